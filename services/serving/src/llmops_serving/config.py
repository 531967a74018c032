"""Settings of the serving service (environment and `.env`), on top of the shared base."""

from llmops_shared.config import ServiceSettings


class ServingSettings(ServiceSettings):
    """Everything the serving service reads from its environment."""

    service_name: str = "serving"
