"""The ``migrate`` commands: built-in experiment runs to MLflow, built-in endpoints to KServe.

``migrate experiments-to-mlflow``: the gateway plans (:mod:`llmops_gateway.moves.experiments`),
queues one ``ExperimentMigrationRequested`` per run in its outbox and publishes it; the tracking
worker, running on MLflow, creates (or reuses) each job's MLflow run from what the built-in
record holds and reports it; the gateway's status consumer folds that report into the record
(backend ``mlflow``, the run id, experiment and URL). A request still in the outbox from an
earlier run is looked up in ``llmops.training``'s dead letters
(:mod:`llmops_gateway.moves.dead_letters`): one that was dead-lettered is reported
``dead_lettered`` with the letter to replay (``llmops dlq replay <id>``), not waited for.
Experiment tracking must be on in the environment (a tracking worker on the built-in backend
refuses every move): the command checks the effective ``experiment_tracking`` flag.

``migrate serving-to-kserve``: the gateway plans (:mod:`llmops_gateway.moves.serving`) every
endpoint of the environment whose last report shows the built-in objects, queues one
``DeploymentMigrationRequested`` (target ``kserve``) per endpoint in its outbox and publishes
it; the serving worker, running on KServe, applies the InferenceService under the endpoint's
name, then removes the Deployment and Service it had created, and reports the endpoint with its
new manifest; the gateway's status consumer folds that report into the endpoint. The serving
framework must be on in the environment (the worker refuses to render KServe otherwise): the
command checks the effective ``serving_framework`` flag.

Both queue nothing while their flag is off. With ``--wait`` they poll the records until the
worker answered for each move (an endpoint reports an InferenceService, or ``Failed``). Running
one again finds nothing built-in and changes nothing; running it while the first requests are
still in flight asks for nothing new (same event ids). Two runs queueing the same moves at the
same moment: the one whose insert conflicts runs its transaction once more
(:func:`llmops_gateway.moves.command.queue_requests`) and finds them already requested.

Exit codes: 0 nothing to do, dry run, queued (``--no-wait``), or everything moved; 1 some
run or endpoint failed, was dead-lettered, was skipped, was not answered within ``--timeout``,
or the flag is off; 2 bad options or settings; 3 an operational error (database or Redis
unreachable, no database).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import typer
from rich.table import Table

from llmops_gateway.moves import experiments, serving
from llmops_gateway.moves.command import Command, run
from llmops_gateway.moves.dead_letters import with_dead_letters
from llmops_gateway.moves.experiments import TARGET, PlannedRun, RunOutcome
from llmops_gateway.moves.flow import DryRun, Moves, Timeout
from llmops_gateway.moves.serving import (
    FORMAT_LABELS,
    KSERVE,
    EndpointOutcome,
    Format,
    PlannedEndpoint,
)
from llmops_gateway.scripts.context import JsonOutput, table_of
from llmops_shared.events import IntegrationArea

# ------------------------------------------------------------- experiments-to-mlflow


def _skipped_run_row(run: PlannedRun) -> dict[str, Any]:
    return {
        "job_id": run.job_id,
        "outcome": "skipped",
        "status": run.status,
        "reason": run.skipped,
        "backend": "builtin",
        "run_id": run.run_id,
        "experiment_id": None,
        "tracking_url": None,
    }


RUNS: Moves[PlannedRun, RunOutcome] = Moves(
    what="experiment runs",
    noun="run",
    target=TARGET,
    destination=TARGET,
    worker="tracking worker",
    id_field="job_id",
    outcomes=experiments.outcomes,
    skipped_row=_skipped_run_row,
    counted=("migrated", "failed", "dead_lettered", "timed_out", "skipped"),
    columns={
        "job id": "job_id",
        "outcome": "outcome",
        "status": "status",
        "run id": "run_id",
        "tracking url": "tracking_url",
        "reason": "reason",
    },
)


def experiments_to_mlflow(
    dry_run: DryRun = False,
    job_id: Annotated[
        list[str] | None,
        typer.Option("--job-id", metavar="ID", help="Only this job's run (repeat for several)."),
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(
            metavar="ENV",
            help="dev | stg | prod: the environment whose tracking flag is checked and whose "
            "runs move (their llmops.environment tag). Default: the gateway's ENVIRONMENT.",
        ),
    ] = None,
    json_output: JsonOutput = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Wait until the tracking worker has answered for every run.",
        ),
    ] = True,
    timeout: Timeout = 300.0,
) -> None:
    """Move built-in experiment runs to MLflow (idempotent; --dry-run shows the plan)."""
    run(
        EXPERIMENTS,
        environment=environment,
        ids=job_id,
        json_output=json_output,
        dry_run=dry_run,
        wait=wait,
        timeout=timeout,
    )


def _runs_table(planned: list[PlannedRun], environment: str) -> Table:
    return table_of(
        f"built-in experiment runs to move to {TARGET} ({environment})",
        ("job id", "experiment", "status", "job status", "MLflow status", "action"),
        [
            (
                run.job_id,
                run.experiment_name,
                run.status,
                run.job_status,
                run.run_status,
                f"skip: {run.skipped}" if run.skipped else "migrate",
            )
            for run in planned
        ],
    )


EXPERIMENTS: Final = Command(
    moves=RUNS,
    source="experiments",
    area=IntegrationArea.EXPERIMENT_TRACKING,
    id_noun="job",
    plan=lambda session, env, ids: experiments.plan(session, job_ids=ids, environment=env),
    queue=lambda session, runs, cid: experiments.queue(session, runs, correlation_id=cid),
    plan_table=_runs_table,
    refusal="the tracking worker runs the built-in backend and refuses to move runs to MLflow",
    answers=with_dead_letters,
)


# ------------------------------------------------------------- serving-to-kserve


def _skipped_endpoint_row(endpoint: PlannedEndpoint) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.endpoint_id,
        "name": endpoint.name,
        "outcome": "skipped",
        "status": endpoint.status,
        "reason": endpoint.skipped,
        "backend": endpoint.backend,
        "url": None,
    }


def endpoint_moves(target: Format) -> Moves[PlannedEndpoint, EndpointOutcome]:
    """How endpoint moves to ``target`` are followed and reported (``migrate
    serving-to-kserve``; ``rollback integrations --remove-kserve`` to the built-in objects)."""
    return Moves(
        what="endpoints",
        noun="endpoint",
        target=target,
        destination=FORMAT_LABELS[target],
        worker="serving worker",
        id_field="endpoint_id",
        outcomes=serving.outcomes,
        skipped_row=_skipped_endpoint_row,
        counted=("migrated", "failed", "gone", "timed_out", "skipped"),
        columns={
            "endpoint id": "endpoint_id",
            "name": "name",
            "outcome": "outcome",
            "status": "status",
            "backend": "backend",
            "reason": "reason",
        },
    )


def serving_to_kserve(
    environment: Annotated[
        str | None,
        typer.Option(
            help="dev | stg | prod: whose endpoints move (and whose serving_framework flag is "
            "checked). Default: the gateway's ENVIRONMENT."
        ),
    ] = None,
    endpoint_id: Annotated[
        list[str] | None,
        typer.Option("--endpoint-id", help="Only this endpoint (repeat for several)."),
    ] = None,
    dry_run: DryRun = False,
    json_output: JsonOutput = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Wait until every endpoint reports an InferenceService (or Failed).",
        ),
    ] = True,
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the moves (with --wait).")
    ] = 300.0,
) -> None:
    """Move built-in serving endpoints to KServe InferenceServices (idempotent; --dry-run
    shows the plan)."""
    run(
        SERVING,
        environment=environment,
        ids=endpoint_id,
        json_output=json_output,
        dry_run=dry_run,
        wait=wait,
        timeout=timeout,
    )


def plan_table(title: str, planned: list[PlannedEndpoint]) -> Table:
    """The endpoints a move plan moves (or skips, and why)."""
    return table_of(
        title,
        ("endpoint id", "name", "route", "status", "now", "action"),
        [
            (
                e.endpoint_id,
                e.name,
                e.route,
                e.status,
                e.current or "unknown",
                f"skip: {e.skipped}" if e.skipped else f"move to {e.target}",
            )
            for e in planned
        ],
    )


SERVING: Final = Command(
    moves=endpoint_moves(KSERVE),
    source="serving",
    area=IntegrationArea.SERVING_FRAMEWORK,
    id_noun="endpoint",
    plan=lambda session, env, ids: serving.plan(
        session, target=KSERVE, environment=env, endpoint_ids=ids
    ),
    queue=lambda session, endpoints, cid: serving.queue(session, endpoints, correlation_id=cid),
    plan_table=lambda planned, env: plan_table(
        f"built-in endpoints to move to KServe ({env})", planned
    ),
    refusal=(
        "the serving worker renders the built-in Deployment + Service and refuses to move "
        "endpoints to KServe"
    ),
)
