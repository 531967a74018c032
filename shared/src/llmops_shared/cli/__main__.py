"""``python -m llmops_shared.cli`` = ``llmops``."""

from llmops_shared.cli import main

main()
