"""``python -m llmops_cli`` = ``llmops``."""

from llmops_cli.app import main

main()
