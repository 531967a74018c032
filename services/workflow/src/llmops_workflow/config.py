"""Settings of the workflow service (environment and `.env`), on top of the shared base."""

from llmops_shared.config import ServiceSettings


class WorkflowSettings(ServiceSettings):
    """Everything the workflow service reads from its environment."""

    service_name: str = "workflow"
