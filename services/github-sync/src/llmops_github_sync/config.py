"""Settings of the github-sync service (environment and `.env`), on top of the shared base."""

from llmops_shared.config import ServiceSettings


class GithubSyncSettings(ServiceSettings):
    """Everything the github-sync service reads from its environment."""

    service_name: str = "github-sync"
