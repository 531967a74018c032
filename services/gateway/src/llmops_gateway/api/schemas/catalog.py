"""Request and response bodies of ``/catalog/models``: models (manual and imported), their
registry links."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from llmops_gateway.api.schemas.common import API_PREFIX, CamelModel, Items, Page
from llmops_gateway.db.models import CatalogModel, RegistryModel
from llmops_shared.events.fields import URI_PATTERN, HfRepoId
from llmops_shared.specs import SPEC_RULE_ERROR_TYPE, get_family
from llmops_shared.uris import NoCredentials


def _whitelisted_family(value: str | None) -> str | None:
    if value is not None and get_family(value) is None:
        raise PydanticCustomError(
            SPEC_RULE_ERROR_TYPE,
            "Model family '{family}' is not supported",
            {"family": value, "rule": "model_family_supported"},
        )
    return value


class CatalogModelRequest(CamelModel):
    """``POST /catalog/models``: a manual catalog entry."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^\S+$")
    family: str = Field(description="A whitelisted model family (llama, mistral, gemma, bert).")
    max_position_embeddings: int = Field(gt=0, le=10_000_000)
    hf_architecture: str | None = Field(default=None, min_length=1, max_length=256)
    storage_uri: Annotated[str | None, NoCredentials] = Field(
        default=None,
        max_length=2048,
        pattern=URI_PATTERN,
        description="Where the model's files are: a URI with a scheme (s3://, file://, "
        "hf://<repo>@<commit>...) or an absolute local path. Training jobs on this base model "
        "are told to read it there (the event's base_model_uri).",
    )

    _family = field_validator("family")(_whitelisted_family)


class ModelImportRequest(CamelModel):
    """``POST /catalog/models/import`` (the model-import example of the integration quickstart)."""

    registry_type: Literal["huggingface"] = Field(description="The registry to import from.")
    registry_model_id: HfRepoId
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=r"^\S+$",
        description="Branch, tag or commit; default: the repo's default branch. The import "
        "pins the commit it resolves to.",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=r"^\S+$",
        description="Catalog name (what specs' base_model_ref use); default: the repo id.",
    )
    download: bool = Field(
        default=False,
        strict=True,  # true or false, not 0, 1 or "yes"
        description="Also download a snapshot of the files to the model store.",
    )
    family: str | None = Field(
        default=None,
        description="Only with the registry integration off: the family to record unverified.",
    )
    max_position_embeddings: int | None = Field(
        default=None,
        gt=0,
        le=10_000_000,
        description="Only with the registry integration off: the context length to record.",
    )

    _family = field_validator("family")(_whitelisted_family)


class CatalogModelOut(CamelModel):
    """A catalog model. ``status``: Pending / Running (importing), Ready, Failed."""

    id: str
    name: str
    family: str | None
    max_position_embeddings: int | None
    hf_architecture: str | None
    source: str
    status: str
    reason: str | None
    verified: bool
    facts: dict[str, Any] | None = Field(
        description="What the import learned: license, gated, files and sizes, safetensors..."
    )
    progress: dict[str, Any] | None
    storage_uri: str | None = Field(
        description="Where the model's files are: typed in, or the snapshot an import "
        "downloaded; null when unknown."
    )
    status_url: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, model: CatalogModel) -> CatalogModelOut:
        return cls.from_row(model, status_url=f"{API_PREFIX}/catalog/models/{model.id}")


class CatalogModelList(Page[CatalogModelOut]):
    pass


class RegistryLinkOut(CamelModel):
    """Where a catalog model came from, and the last check for upstream changes."""

    id: str
    model_id: str | None
    registry: str
    repo_id: str
    revision: str | None = Field(description="What the import asked for (null: default branch).")
    resolved_revision: str | None = Field(description="The commit the model is pinned to.")
    url: str | None
    status: str
    last_synced_at: datetime | None
    upstream_revision: str | None
    upstream_checked_at: datetime | None
    update_available: bool | None
    check_error: str | None

    @classmethod
    def of(cls, link: RegistryModel) -> RegistryLinkOut:
        return cls.from_row(link, model_id=link.catalog_model_id, registry=link.registry_kind)


class RegistryLinkList(Items[RegistryLinkOut]):
    pass
