"""Settings of the tracking service (environment and `.env`), on top of the shared base."""

from llmops_shared.config import ServiceSettings


class TrackingSettings(ServiceSettings):
    """Everything the tracking service reads from its environment."""

    service_name: str = "tracking"
