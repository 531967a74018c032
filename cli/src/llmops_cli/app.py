"""``llmops``: the platform's command line (``llmops --help`` lists the commands).

Services add command groups through the ``llmops.cli`` entry-point group (name = group name,
value = a ``typer.Typer``): the gateway's ``validate``, ``migrate`` and ``rollback`` scripts
live with the database they work on, and this package never imports a service.
"""

import sys
from importlib.metadata import entry_points

import typer

from llmops_cli.commands import catalog, integrations, lineage, ops, security, train, up

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
app.add_typer(security.keys_app, name="keys")
app.command("audit")(security.audit)
app.command("lineage")(lineage.lineage)


_loaded: set[str] = set()


def with_plugins(argv: list[str] | None = None) -> typer.Typer:
    """:data:`app` with the installed ``llmops.cli`` command groups it needs; all of them when
    ``argv`` is None. A broken group is named on stderr, not fatal.

    With ``argv``, a group is imported only when the command line names it, or lists the
    commands (no command, or an option first such as ``--help``): the gateway's scripts import
    SQLAlchemy and its whole domain, which ``llmops train`` or ``llmops up`` should not pay for.
    """
    command = argv[1] if argv is not None and len(argv) > 1 else None
    everything = argv is None or command is None or command.startswith("-")
    for entry in sorted(entry_points(group="llmops.cli"), key=lambda e: e.name):
        if entry.name in _loaded or (not everything and entry.name != command):
            continue
        try:
            group = entry.load()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the CLI
            print(f"llmops: command group {entry.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        app.add_typer(group, name=entry.name)
        _loaded.add(entry.name)
    return app


def main() -> None:
    """The ``llmops`` command."""
    with_plugins(sys.argv)()


__all__ = ["app", "main", "with_plugins"]
