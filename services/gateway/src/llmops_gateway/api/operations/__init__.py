"""The operations endpoints: integrations health, integration flags, dead letters (their use
cases are in :mod:`llmops_gateway.operations`)."""
