"""Settings of the versioning service (environment and `.env`), on top of the shared base."""

from llmops_shared.config import ServiceSettings


class VersioningSettings(ServiceSettings):
    """Everything the versioning service reads from its environment."""

    service_name: str = "versioning"
