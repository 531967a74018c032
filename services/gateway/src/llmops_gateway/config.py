"""Settings of the gateway service (environment and `.env`), on top of the shared base."""

from llmops_shared.config import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Everything the gateway service reads from its environment."""

    service_name: str = "gateway"
