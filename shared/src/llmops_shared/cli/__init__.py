"""``llmops``: the platform's command line (``llmops --help`` lists the commands).

Services add command groups through the ``llmops.cli`` entry-point group (name = group name,
value = a ``typer.Typer``): the gateway's ``validate``, ``migrate`` and ``rollback`` scripts
live with the database they work on, and this package never imports a service.
"""

import sys
from importlib.metadata import entry_points

import typer

from llmops_shared.cli import catalog, integrations, ops, train, up

app = typer.Typer(
    help="The LLM-Ops platform from the terminal: local stack, training, catalog, streams.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("up")(up.up)
app.command("redis")(ops.run_redis)
app.command("streams")(ops.streams_status)
app.command("dlq")(ops.dead_letters)
app.add_typer(train.train_app, name="train")
app.add_typer(catalog.models_app, name="models")
app.add_typer(catalog.datasets_app, name="datasets")
app.add_typer(integrations.integrations_app, name="integrations")


def _add_plugins(root: typer.Typer) -> None:
    """Add every installed ``llmops.cli`` command group; a broken one is named, not fatal."""
    for entry in sorted(entry_points(group="llmops.cli"), key=lambda e: e.name):
        try:
            group = entry.load()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the CLI
            print(f"llmops: command group {entry.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        root.add_typer(group, name=entry.name)


_add_plugins(app)

__all__ = ["app"]
