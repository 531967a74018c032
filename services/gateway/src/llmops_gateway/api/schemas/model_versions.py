"""Bodies of ``/catalog/model-versions``: a model version with its Git sync state."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from llmops_gateway.api.schemas.common import API_PREFIX, CamelModel, Page
from llmops_gateway.db.models import ModelVersion, TrainingJob


class ModelVersionOut(CamelModel):
    name: str
    version: str
    status: str = Field(description="The last sync's phase (Succeeded, Failed...).")
    reason: str | None
    backend: str | None = Field(description="github or git.")
    path: str | None = Field(description="The Helm values file in the repository.")
    action: str | None = Field(description="created, updated, regenerated, unchanged, skipped.")
    commit: str | None = Field(description="The commit that wrote the file.")
    pull_request: str | None
    max_model_len: int | None
    capped: bool | None
    updated_at: datetime
    training_job_id: str | None = Field(
        description="The job whose pipeline registered the version; null: registered "
        "outside the platform, or not known yet."
    )
    run_id: str | None = Field(description="The MLflow run of that job.")
    status_url: str

    @classmethod
    def of(cls, row: ModelVersion, job: TrainingJob | None = None) -> ModelVersionOut:
        return cls.from_row(
            row,
            training_job_id=None if job is None else job.id,
            run_id=None if job is None else job.model_run_id,
            status_url=f"{API_PREFIX}/catalog/model-versions/{row.name}/{row.version}",
        )


class ModelVersionList(Page[ModelVersionOut]):
    pass
