"""Settings of the registry service (environment and `.env`), on top of the shared base."""

from llmops_shared.config import ServiceSettings


class RegistrySettings(ServiceSettings):
    """Everything the registry service reads from its environment."""

    service_name: str = "registry"
