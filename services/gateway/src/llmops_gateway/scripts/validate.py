"""``validate training-jobs`` / ``validate serving-endpoints``: today's rules over stored specs.

The integration quickstart's ``validate_existing_training_jobs.py`` and
``validate_existing_serving_endpoints.py`` (from its troubleshooting of TrainJobSpec /
DeploymentSpec validation issues)::

    llmops validate training-jobs                       # every stored job
    llmops validate training-jobs --job-id <job id>     # one job
    llmops validate serving-endpoints                   # every endpoint not being deleted
    llmops validate serving-endpoints --endpoint-id <endpoint id>
    llmops validate training-jobs --json | jq '.records[] | select(.violations != [])'
    llmops validate serving-endpoints --mark            # also store the result on each row

(``python -m llmops_gateway.scripts validate ...`` is the same command.) They read the gateway's
settings (``DATABASE_URL``, ``TRAINING_REQUIRES_DATASET_VERSION``...) from the environment and
``.env``, like the gateway, and run the rules the API applies at submission, with the catalog as
it is now: the spec's schema rules and field constraints first (a spec that no longer parses is
reported with pydantic's error text), then, for a spec that parses, the catalog rules (base or
served model exists and is Ready, its family, ``max_seq_len`` and ``max_input_tokens +
max_output_tokens`` within its ``max_position_embeddings``, dataset type and Succeeded version,
the family and job type of the training job that produced a deployed model). The messages are
the API's, e.g. ``Model family 'xxx' is not supported``, ``Dataset type 'xxx' is not compatible
with job_type 'yyy'``, ``SFT max_seq_len must be <= base_model.max_position_embeddings (4096 >
2048)``, ``Serve target 'xxx' is not compatible with job_type 'yyy'``.

Output: a table of the violations (one row per broken rule: record, status, field, message;
``--all`` also lists the clean records), then the summary line ``N training jobs checked, M with
violations``. ``--json`` prints one JSON document instead (summary on stderr)::

    {"entity": "training job", "checked": 3, "withViolations": 1, "marked": false,
     "validatedAt": "...", "skipped": [],
     "records": [{"id": "...", "name": "<artifact or endpoint name>", "status": "Succeeded",
                  "violations": [{"loc": ["model_family"], "message": "Model family ...",
                                  "rule": "model_family_supported", "type": "spec_rule"}],
                  "catalogChecked": false}, ...]}

``records`` holds every checked record (``violations: []`` when clean; endpoints also carry
``environment`` and ``route``); ``catalogChecked`` is false when the spec itself is invalid, so
the catalog rules could not run on it yet. A full endpoint run skips endpoints being deleted
(Deleting, DeleteFailed; listed under ``skipped``); ``--endpoint-id`` checks the one named.

``--mark`` writes the result on each checked row, in one transaction: ``violations`` (the list
above, ``[]`` when clean) and ``validated_at``; ``updated_at`` is left alone. The API shows them
as ``violations`` and ``validatedAt`` on ``GET /training/jobs/{id}`` and
``GET /serving/endpoints/{id}``. Running it again rewrites both.

Exit status: 0 when no checked record breaks a rule, 1 when some do (for CI and cron alerts),
2 on bad usage (an unknown ``--job-id`` / ``--endpoint-id``, an unknown option, invalid
settings), 3 on an operational error (the database cannot be reached, no gateway database where
an unset ``DATABASE_URL`` points): one line on stderr, see
:mod:`llmops_gateway.scripts.context`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, NoReturn

import typer
from sqlalchemy.orm import Session

from llmops_gateway.config import GatewaySettings
from llmops_gateway.domain.errors import NotFoundError
from llmops_gateway.domain.revalidation import (
    Revalidation,
    revalidate_serving_endpoints,
    revalidate_training_jobs,
)
from llmops_gateway.scripts.context import ScriptContext, script_context, table_of

JsonOutput = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (every checked record).")
]
Mark = Annotated[
    bool,
    typer.Option(
        "--mark",
        help="Store the result on each checked record (violations, validated_at).",
    ),
]
ShowAll = Annotated[
    bool, typer.Option("--all", help="List records without violations in the table too.")
]


def training_jobs(
    job_id: Annotated[
        str | None, typer.Option("--job-id", help="Check only this training job.")
    ] = None,
    json_output: JsonOutput = False,
    mark: Mark = False,
    show_all: ShowAll = False,
) -> None:
    """Re-validate stored training jobs against today's TrainJobSpec and catalog rules."""

    def check(session: Session, settings: GatewaySettings) -> Revalidation:
        return revalidate_training_jobs(
            session,
            job_id=job_id,
            require_dataset_version=settings.training_requires_dataset_version,
            mark=mark,
        )

    _revalidate(check, json_output=json_output, show_all=show_all)


def serving_endpoints(
    endpoint_id: Annotated[
        str | None, typer.Option("--endpoint-id", help="Check only this serving endpoint.")
    ] = None,
    json_output: JsonOutput = False,
    mark: Mark = False,
    show_all: ShowAll = False,
) -> None:
    """Re-validate stored serving endpoints against today's DeploymentSpec and catalog rules."""

    def check(session: Session, settings: GatewaySettings) -> Revalidation:
        return revalidate_serving_endpoints(session, endpoint_id=endpoint_id, mark=mark)

    _revalidate(check, json_output=json_output, show_all=show_all)


def _revalidate(
    check: Callable[[Session, GatewaySettings], Revalidation], *, json_output: bool, show_all: bool
) -> NoReturn:
    """Run ``check`` in one transaction (it marks the rows with ``--mark``), report, and exit 0
    when no checked record breaks a rule, 1 when some do, 2 for an unknown record."""
    with script_context(json_output=json_output) as ctx:
        try:
            with ctx.sessions.begin() as session:
                result = check(session, ctx.settings)
        except NotFoundError as exc:
            _usage_error(ctx, str(exc))
        _report(ctx, result, show_all=show_all)
    raise typer.Exit(0 if result.ok else 1)


def _usage_error(ctx: ScriptContext, message: str) -> NoReturn:
    ctx.err.print(f"{message}: nothing was checked", style="red", markup=False, highlight=False)
    raise typer.Exit(2)


def _report(ctx: ScriptContext, result: Revalidation, *, show_all: bool) -> None:
    """The table (violations, or every record with ``--all``) or the JSON document; then the
    summary line (stderr with ``--json``, so stdout stays one document)."""
    endpoints = result.entity == "serving endpoint"
    columns = (
        ["endpoint id", "name", "environment", "status", "field", "violation"]
        if endpoints
        else ["job id", "artifact", "status", "field", "violation"]
    )
    rows: list[list[str | None]] = []
    for record in result.records:
        head = [record.id, record.name]
        if endpoints:
            head.append(record.environment)
        head.append(record.status)
        if record.ok and show_all:
            rows.append([*head, None, "ok"])
        for violation in record.violations:
            rows.append([*head, violation.field, violation.message])
    title = f"{result.entity.capitalize()}s" + ("" if show_all else " with violations")
    ctx.emit(result.as_json(), table_of(title, columns, rows) if rows else None)
    console = ctx.err if ctx.json_output else ctx.out
    style = "green" if result.ok else "red"
    console.print(result.summary(), style=style, markup=False, highlight=False)
