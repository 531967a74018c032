"""The gateway's tables: the read model of the platform, the outbox and the consumer's ledger.

The Alembic migrations under ``llmops_gateway/migrations`` create exactly these tables; a test
compares the two (autogenerate must find no difference), so change both together.

Conventions, chosen so that SQLite and PostgreSQL behave alike:

* ids are strings (UUIDs minted by the gateway, or external ids such as MLflow run ids);
* timestamps are timezone-aware and always UTC (:class:`UtcDateTime` restores the zone SQLite
  drops);
* defaults are set in Python, not as server defaults, so the migrations stay dialect-neutral;
* every status-bearing row keeps the ``seq`` of the last status report applied to it, which is
  how stale or redelivered reports are ignored (see :mod:`llmops_gateway.domain.status`).

The base and its conventions are :mod:`.base`, the gateway's own entities :mod:`.entities`, the
integration tables :mod:`.integrations`, the API keys and the audit log :mod:`.security`, the
model versions github-sync reported :mod:`.lineage`, the OpenLineage run events to send
:mod:`.openlineage`; every name is importable from this package.
"""

from sqlalchemy import Table

from llmops_gateway.db.models.base import (
    NAMING_CONVENTION,
    Base,
    Timestamped,
    UtcDateTime,
    utcnow,
)
from llmops_gateway.db.models.entities import (
    CatalogDataset,
    CatalogModel,
    ProcessedEvent,
    TrainingJob,
)
from llmops_gateway.db.models.integrations import (
    DatasetRestore,
    DatasetVersion,
    ExperimentRun,
    IntegrationConfig,
    RegistryModel,
    ServingDeployment,
    WorkflowPipeline,
)
from llmops_gateway.db.models.lineage import ModelVersion, StatusHistory
from llmops_gateway.db.models.openlineage import OpenLineageOutbox
from llmops_gateway.db.models.security import ApiKey, AuditRecord
from llmops_shared.streams.outbox import outbox_table

OUTBOX: Table = outbox_table(Base.metadata)
"""The transactional outbox (defined by the shared runtime, migrated by the gateway)."""

__all__ = [
    "NAMING_CONVENTION",
    "OUTBOX",
    "ApiKey",
    "AuditRecord",
    "Base",
    "CatalogDataset",
    "CatalogModel",
    "DatasetRestore",
    "DatasetVersion",
    "ExperimentRun",
    "IntegrationConfig",
    "ModelVersion",
    "OpenLineageOutbox",
    "ProcessedEvent",
    "RegistryModel",
    "ServingDeployment",
    "StatusHistory",
    "Timestamped",
    "TrainingJob",
    "UtcDateTime",
    "WorkflowPipeline",
    "utcnow",
]
