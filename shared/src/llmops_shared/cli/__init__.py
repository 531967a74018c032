"""``llmops``: the platform's command line (``llmops --help`` lists the commands)."""

import typer

from llmops_shared.cli import catalog, ops, train, up

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

__all__ = ["app"]
