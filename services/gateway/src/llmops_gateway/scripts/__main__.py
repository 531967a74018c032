"""``python -m llmops_gateway.scripts``."""

from llmops_gateway.scripts.cli import app

app(prog_name="python -m llmops_gateway.scripts")
