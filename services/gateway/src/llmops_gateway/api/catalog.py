"""``/catalog/models``: the models specs are checked against, manual or imported."""

from __future__ import annotations

from fastapi import status

from llmops_gateway.api.deps import CorrelationId, Pagination, State
from llmops_gateway.api.errors import rules_refused
from llmops_gateway.api.routes import Routes
from llmops_gateway.api.schemas.catalog import (
    CatalogModelList,
    CatalogModelOut,
    CatalogModelRequest,
    ModelImportRequest,
    RegistryLinkList,
    RegistryLinkOut,
)
from llmops_gateway.domain.catalog import (
    ImportModel,
    RegisterModel,
    get_model,
    import_model,
    list_catalog_models,
    register_model,
    registry_links,
    request_update_check,
)
from llmops_gateway.domain.errors import CatalogRuleError
from llmops_gateway.operations.integration_configs import registry_enabled
from llmops_gateway.security.access import Scope

routes = Routes.at(
    "/catalog/models",
    tag="catalog",
    scope=Scope.ANY,
    not_found="No such model",
    conflict="A model with this name exists, or the model's state forbids it",
)
router = routes.router


@routes.command(
    "", status_code=status.HTTP_201_CREATED, summary="Register a model in the catalog by hand"
)
def create_model(body: CatalogModelRequest, state: State) -> CatalogModelOut:
    model = register_model(
        state.sessions,
        RegisterModel(
            name=body.name,
            family=body.family,
            max_position_embeddings=body.max_position_embeddings,
            hf_architecture=body.hf_architecture,
            storage_uri=body.storage_uri,
        ),
    )
    return CatalogModelOut.of(model)


@routes.command("/import", summary="Import a model from a registry (Hugging Face Hub)")
def import_from_registry(
    body: ModelImportRequest, state: State, correlation_id: CorrelationId
) -> CatalogModelOut:
    """Store the entry as Pending and queue its import; the registry worker reads the model's
    config at a pinned commit and makes it Ready (or Failed, with why). Follow ``statusUrl``.
    Importing a Failed import's name again retries it. With ``MODEL_REGISTRY_ENABLED=false``
    the request's ``family`` and ``maxPositionEmbeddings`` are recorded at once, unverified."""
    command = ImportModel(
        registry_type=body.registry_type,
        registry_model_id=body.registry_model_id,
        revision=body.revision,
        name=body.name,
        download=body.download,
        family=body.family,
        max_position_embeddings=body.max_position_embeddings,
        correlation_id=correlation_id,
    )
    try:
        model = import_model(
            state.sessions,
            command,
            registry_enabled=registry_enabled(state.sessions, state.settings),
        )
    except CatalogRuleError as exc:
        raise rules_refused(exc, "ModelImportRequest", ("body",)) from None
    state.wake_relay()
    return CatalogModelOut.of(model)


@routes.page(summary="List catalog models, newest first")
def list_models(state: State, page: Pagination) -> CatalogModelList:
    models = list_catalog_models(state.sessions, limit=page.limit, offset=page.offset)
    return CatalogModelList.of([CatalogModelOut.of(m) for m in models], page)


@routes.read("/{model_id}", summary="Read a model")
def read_model(model_id: str, state: State) -> CatalogModelOut:
    return CatalogModelOut.of(get_model(state.sessions, model_id))


@routes.read(
    "/{model_id}/registry-links",
    summary="Where the model was imported from, pinned commit and last update check",
)
def read_registry_links(model_id: str, state: State) -> RegistryLinkList:
    links = registry_links(state.sessions, model_id)
    return RegistryLinkList(items=[RegistryLinkOut.of(link) for link in links])


@routes.command(
    "/{model_id}/check-updates",
    summary="Ask whether the registry has a newer commit than the pinned one",
)
def check_updates(model_id: str, state: State, correlation_id: CorrelationId) -> RegistryLinkOut:
    """Queue a check; the answer lands on the registry link (``updateAvailable``,
    ``upstreamRevision``, ``upstreamCheckedAt``); read it with ``GET .../registry-links``."""
    link = request_update_check(
        state.sessions,
        model_id,
        correlation_id=correlation_id,
        registry_enabled=registry_enabled(state.sessions, state.settings),
    )
    state.wake_relay()
    return RegistryLinkOut.of(link)
