"""The scripts' typer app: ``validate``, ``migrate`` and ``rollback`` command groups."""

from __future__ import annotations

import typer

from llmops_gateway.moves.cli import experiments_to_mlflow, serving_to_kserve
from llmops_gateway.scripts import rollback, validate

app = typer.Typer(
    help="Operator scripts over the gateway's database (validate, migrate, rollback).",
    epilog="Exit status: 0 done, 1 something found wrong (violations, a record not moved), "
    "2 bad usage or settings, 3 operational error (database or Redis unreachable, no database).",
    no_args_is_help=True,
    add_completion=False,
)

validate_app = typer.Typer(
    help="Re-run today's spec rules over stored records and report violations.",
    no_args_is_help=True,
)
validate_app.command("training-jobs")(validate.training_jobs)
validate_app.command("serving-endpoints")(validate.serving_endpoints)

migrate_app = typer.Typer(
    help="Move built-in records to the real systems (idempotent; --dry-run shows the plan).",
    no_args_is_help=True,
)
migrate_app.command("experiments-to-mlflow")(experiments_to_mlflow)
migrate_app.command("serving-to-kserve")(serving_to_kserve)

rollback_app = typer.Typer(
    help="Turn integrations off for an environment (lists the plan first).",
    no_args_is_help=True,
)
rollback_app.command("integrations")(rollback.integrations)

app.add_typer(validate_app, name="validate")
app.add_typer(migrate_app, name="migrate")
app.add_typer(rollback_app, name="rollback")
