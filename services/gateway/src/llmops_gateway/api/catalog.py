"""``/catalog/models``: the base models training specs are checked against."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from llmops_gateway.api.deps import Authenticated, Sessions
from llmops_gateway.api.schemas import (
    API_PREFIX,
    CatalogModelList,
    CatalogModelOut,
    CatalogModelRequest,
)
from llmops_gateway.db import repository
from llmops_gateway.domain.catalog import RegisterModel, get_model, register_model

router = APIRouter(prefix=f"{API_PREFIX}/catalog/models", tags=["catalog"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    404: {"description": "No such model"},
    409: {"description": "A model with this name exists"},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CatalogModelOut,
    dependencies=[Authenticated],
    responses=_ERRORS,
    summary="Register a model in the catalog",
)
def create_model(body: CatalogModelRequest, sessions: Sessions) -> CatalogModelOut:
    model = register_model(
        sessions,
        RegisterModel(
            name=body.name,
            family=body.family,
            max_position_embeddings=body.max_position_embeddings,
            hf_architecture=body.hf_architecture,
        ),
    )
    return CatalogModelOut.of(model)


@router.get("", response_model=CatalogModelList, summary="List catalog models, newest first")
def list_models(
    sessions: Sessions,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CatalogModelList:
    with sessions() as session:
        models = repository.list_catalog_models(session, limit=limit, offset=offset)
    return CatalogModelList(
        items=[CatalogModelOut.of(m) for m in models], limit=limit, offset=offset
    )


@router.get(
    "/{model_id}", response_model=CatalogModelOut, responses=_ERRORS, summary="Read a model"
)
def read_model(model_id: str, sessions: Sessions) -> CatalogModelOut:
    return CatalogModelOut.of(get_model(sessions, model_id))
