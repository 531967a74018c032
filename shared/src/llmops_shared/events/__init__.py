"""The event contract: CloudEvents envelope, payload models, stream names, codec.

Events are a public, versioned API (other systems publish onto the streams too), so consumers
validate everything they read with :func:`decode_event`. The JSON Schemas and the AsyncAPI
document under ``docs/events/`` are generated from these models by
``python -m llmops_shared.events.export``. See ``docs/events.md``.
"""

from llmops_shared.events.base import EventPayload
from llmops_shared.events.codec import decode_event, encode_event, new_event
from llmops_shared.events.dead_letter import DEAD_LETTER_FIELDS, DeadLetterEntry
from llmops_shared.events.envelope import Envelope, Event, is_valid_traceparent
from llmops_shared.events.errors import EventDecodeError
from llmops_shared.events.fields import REASON_MAX_LENGTH
from llmops_shared.events.names import (
    DEAD_LETTER_SUFFIX,
    EVENT_TYPE_PATTERN,
    Stream,
    dead_letter_stream,
    is_valid_event_type,
)
from llmops_shared.events.payloads.catalog import ModelImportRequested, ModelUpdateCheckRequested
from llmops_shared.events.payloads.config import (
    AREA_SYSTEMS,
    IntegrationArea,
    IntegrationConfigChanged,
)
from llmops_shared.events.payloads.datasets import DatasetRestoreRequested, DatasetVersionRequested
from llmops_shared.events.payloads.details import (
    DatasetRestoreDetails,
    DatasetVersionDetails,
    DeploymentDetails,
    ExperimentRunDetails,
    JobDetails,
    ModelDetails,
    ModelVersionDetails,
    PipelineDetails,
    ReportDetails,
)
from llmops_shared.events.payloads.models import (
    ModelVersionChanged,
    ModelVersionRegistered,
    model_version_event_id,
    model_version_id,
)
from llmops_shared.events.payloads.serving import (
    DeploymentDeleted,
    DeploymentMigrationRequested,
    DeploymentPromoted,
    DeploymentRequested,
    DeploymentRolledBack,
)
from llmops_shared.events.payloads.status import (
    STATUS_PAYLOADS,
    DatasetRestoreStatusUpdated,
    DatasetVersionStatusUpdated,
    DeploymentStatusUpdated,
    ExperimentRunStatusUpdated,
    JobStatusUpdated,
    ModelStatusUpdated,
    ModelVersionStatusUpdated,
    Phase,
    PipelineStatusUpdated,
    StatusEntity,
    StatusUpdated,
    clip_reason,
    new_seq,
    status_updated,
)
from llmops_shared.events.payloads.training import (
    DatasetVersionPin,
    ExperimentMigrationRequested,
    RegisteredModel,
    TrainingJobCancelled,
    TrainingJobSubmitted,
)
from llmops_shared.events.registry import EVENT_TYPES, PAYLOAD_TYPES, event_types_for, stream_for
from llmops_shared.events.reporting import reply_status, status_event

__all__ = [
    "AREA_SYSTEMS",
    "DEAD_LETTER_FIELDS",
    "DEAD_LETTER_SUFFIX",
    "EVENT_TYPES",
    "EVENT_TYPE_PATTERN",
    "PAYLOAD_TYPES",
    "REASON_MAX_LENGTH",
    "STATUS_PAYLOADS",
    "DatasetRestoreDetails",
    "DatasetRestoreRequested",
    "DatasetRestoreStatusUpdated",
    "DatasetVersionDetails",
    "DatasetVersionPin",
    "DatasetVersionRequested",
    "DatasetVersionStatusUpdated",
    "DeadLetterEntry",
    "DeploymentDeleted",
    "DeploymentDetails",
    "DeploymentMigrationRequested",
    "DeploymentPromoted",
    "DeploymentRequested",
    "DeploymentRolledBack",
    "DeploymentStatusUpdated",
    "Envelope",
    "Event",
    "EventDecodeError",
    "EventPayload",
    "ExperimentMigrationRequested",
    "ExperimentRunDetails",
    "ExperimentRunStatusUpdated",
    "IntegrationArea",
    "IntegrationConfigChanged",
    "JobDetails",
    "JobStatusUpdated",
    "ModelDetails",
    "ModelImportRequested",
    "ModelStatusUpdated",
    "ModelUpdateCheckRequested",
    "ModelVersionChanged",
    "ModelVersionDetails",
    "ModelVersionRegistered",
    "ModelVersionStatusUpdated",
    "Phase",
    "PipelineDetails",
    "PipelineStatusUpdated",
    "RegisteredModel",
    "ReportDetails",
    "StatusEntity",
    "StatusUpdated",
    "Stream",
    "TrainingJobCancelled",
    "TrainingJobSubmitted",
    "clip_reason",
    "dead_letter_stream",
    "decode_event",
    "encode_event",
    "event_types_for",
    "is_valid_event_type",
    "is_valid_traceparent",
    "model_version_event_id",
    "model_version_id",
    "new_event",
    "new_seq",
    "reply_status",
    "status_event",
    "status_updated",
    "stream_for",
]
