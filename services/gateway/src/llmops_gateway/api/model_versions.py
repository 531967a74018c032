"""``/catalog/model-versions``: the MLflow model versions github-sync wrote to Git as Helm
values, with where (file, commit, pull request) and whether the last sync worked. Model
versions belong to no environment (like the catalog): any viewer reads them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from llmops_gateway.api.deps import Pagination, State
from llmops_gateway.api.routes import Routes
from llmops_gateway.api.schemas.model_versions import ModelVersionList, ModelVersionOut
from llmops_gateway.domain.model_versions import get_model_version, list_model_versions
from llmops_gateway.security.access import Scope

routes = Routes.at(
    "/catalog/model-versions",
    tag="catalog",
    scope=Scope.ANY,
    not_found="github-sync has not reported this model version",
)
router = routes.router


@routes.page(summary="List model versions and their Git sync, newest first")
def list_versions(
    state: State,
    page: Pagination,
    name: Annotated[
        str | None, Query(max_length=256, description="Only this registered model's.")
    ] = None,
) -> ModelVersionList:
    rows = list_model_versions(state.sessions, name=name, limit=page.limit, offset=page.offset)
    return ModelVersionList.of([ModelVersionOut.of(row) for row in rows], page)


@routes.read("/{name}/{version}", summary="A model version: its values file, commit and job")
def read_version(name: str, version: str, state: State) -> ModelVersionOut:
    """The version as github-sync last reported it, and the training job that registered it."""
    return ModelVersionOut.of(*get_model_version(state.sessions, name, version))
