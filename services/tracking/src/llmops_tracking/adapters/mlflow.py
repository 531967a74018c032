"""The MLflow backend: experiments and runs over MLflow's REST API.

Idempotency comes from MLflow itself, not from local state: a job's run is the run tagged
``llmops.job_id=<job_id>`` in its experiment, looked up before one is created, and the tag is
written in the same ``create_run`` call, so a redelivered event (or a worker that died after
``create_run``) finds the run instead of making a second one.

MLflow has no unique constraint on a tag, so search-then-create is only safe under the job's
run lock, which the handlers hold (:class:`~llmops_tracking.ports.RunLocks`) and whose lease
this adapter is given. Two fences cover a lock that ran out while held: ``create_run`` is only
sent while the lease has at least ``create_margin_s`` left (the longest the call may take), and
after creating, the run is looked up again: if another active run of the job exists, the
oldest one stays and ours, if it is not the oldest, is tagged ``llmops.duplicate_of`` and
deleted (a soft delete MLflow can undo), and the oldest is used instead.

MLflow's client is synchronous; calls run in a worker thread so the consumer's event loop (and
its health server) keeps answering. Failures are translated for the consumer runtime:

* unreachable, timed out, 408/429/502/503/504, auth or endpoint errors, and any other 5xx
  while MLflow's health check fails too -> :class:`TrackingUnavailable` (the event waits,
  nothing is dead-lettered);
* 500 (or another 5xx) while MLflow otherwise answers -> :class:`MlflowServerError`, an
  ordinary retryable error: the request itself seems to break the server, so after
  ``max_deliveries`` the event is dead-lettered instead of stalling the stream forever;
* other 4xx -> :class:`TrackingRejected` (dead-lettered at once with MLflow's message).

The classification is :mod:`~llmops_tracking.adapters.mlflow_errors`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, MutableMapping
from typing import Final, TypeVar

import requests
from mlflow.entities import Param, Run, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from llmops_shared.logging import get_logger
from llmops_shared.streams.connection import redact_url
from llmops_tracking.adapters.mlflow_errors import message, translate, unavailable_message
from llmops_tracking.mapping import CANCEL_REASON_TAG, JOB_ID_TAG, TAG_PREFIX
from llmops_tracking.ports import (
    RunLease,
    RunRequest,
    RunStatus,
    TrackedRun,
    TrackingRejected,
    TrackingUnavailable,
)

MANAGED_TAG: Final = "llmops.managed"
"""Experiment tag marking experiments this worker writes to; cancels search only those."""
DUPLICATE_OF_TAG: Final = "llmops.duplicate_of"
"""Set, before deleting it, on a run found to duplicate an older run of its job."""

_PAGE_SIZE: Final = 100  # MLflow's limit of params per log_batch, and a sane search page
T = TypeVar("T")


def configure_client(
    *,
    max_retries: int,
    timeout_s: int,
    environ: MutableMapping[str, str] = os.environ,
) -> None:
    """Make the MLflow client fail fast and stay quiet; MLflow reads these per request.

    Its defaults (7 retries with backoff, 120 s timeout) hold a dead server's event for
    minutes inside one handler call; the consumer runtime retries with backoff instead and
    keeps the event pending. ``create_run`` is a POST: a client-level retry after a lost reply
    could create a second run, while the runtime's retry searches for the first one.
    """
    environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max_retries)
    environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout_s)
    # set_terminated prints "View run ..." to stdout, which would break JSON log lines
    environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def mlflow_client(tracking_uri: str, *, max_retries: int, timeout_s: int) -> MlflowClient:
    """An ``MlflowClient`` for ``tracking_uri`` configured to fail fast (see above)."""
    configure_client(max_retries=max_retries, timeout_s=timeout_s)
    return MlflowClient(tracking_uri=tracking_uri)


def run_url(base_url: str | None, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of a run, or ``None`` when there is no web UI to link to."""
    if base_url is None or not base_url.startswith(("http://", "https://")):
        return None
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


class MlflowTracking:
    """A :class:`~llmops_tracking.ports.TrackingBackend` on an MLflow tracking server."""

    def __init__(
        self, client: MlflowClient, *, ui_url: str | None = None, create_margin_s: float = 10.0
    ) -> None:
        """``create_margin_s``: the longest one ``create_run`` call may take (the client's
        timeout, retries and backoff); a run is only created while the job's lease has that
        much left, so it exists before any other replica can hold the lock."""
        self._client = client
        self._create_margin_s = create_margin_s
        self._uri = str(client.tracking_uri)
        self._ui_url = ui_url or self._uri
        self._log = get_logger(__name__).bind(mlflow=redact_url(self._uri))

    @property
    def name(self) -> str:
        return "mlflow"

    # ------------------------------------------------------------------ port

    async def ensure_run(self, request: RunRequest, lease: RunLease) -> TrackedRun:
        return await self._call(f"tracking job {request.job_id}", self._ensure_run, request, lease)

    async def cancel_run(self, job_id: str, reason: str) -> TrackedRun | None:
        return await self._call(f"cancelling job {job_id}", self._cancel_run, job_id, reason)

    async def migrate_run(
        self, request: RunRequest, status: RunStatus, lease: RunLease
    ) -> TrackedRun:
        return await self._call(
            f"migrating the run of job {request.job_id}",
            self._migrate_run,
            request,
            status,
            lease,
        )

    async def ping(self) -> None:
        """One cheap authenticated API call: proves the server, its store and our credentials."""
        await self._call("checking readiness", self._ping)

    # ------------------------------------------------------------------ blocking parts

    def _ensure_run(self, request: RunRequest, lease: RunLease) -> TrackedRun:
        run = self._run_for(request, lease)
        return self._tracked(run, request.experiment_name, params=request.params, tags=request.tags)

    def _run_for(self, request: RunRequest, lease: RunLease) -> Run:
        """The job's run in its experiment, found by the job id tag or created (under the
        job's lease, then fenced: :meth:`_settle`); params logged."""
        experiment_id = self._ensure_experiment(request.experiment_name)
        run = self._find_run([experiment_id], request.job_id)
        if run is None:
            lease.check(self._create_margin_s)
            run = self._client.create_run(
                experiment_id,
                start_time=request.start_time_ms,
                run_name=request.run_name,
                tags=dict(request.tags),
            )
            self._log.info("mlflow_run_created", job_id=request.job_id, run_id=run.info.run_id)
            run = self._settle(experiment_id, request.job_id, run)
        else:
            self._log.info("mlflow_run_reused", job_id=request.job_id, run_id=run.info.run_id)
        self._log_params(run, request.params)
        return run

    def _migrate_run(self, request: RunRequest, status: RunStatus, lease: RunLease) -> TrackedRun:
        """Create or reuse the run, add the recorded tags it lacks, end it like the record.

        A run that already ended keeps its own status (a redelivery, or a job cancelled in
        MLflow meanwhile): MLflow's end is the newer fact.
        """
        run = self._run_for(request, lease)
        run_id = run.info.run_id
        tags = [RunTag(k, v) for k, v in request.tags.items() if run.data.tags.get(k) != v]
        for start in range(0, len(tags), _PAGE_SIZE):
            self._client.log_batch(run_id, tags=tags[start : start + _PAGE_SIZE])
        current = RunStatus(run.info.status)
        if status.terminal and not current.terminal:
            self._client.set_terminated(run_id, status=status.value, end_time=request.end_time_ms)
            current = status
        self._log.info(
            "mlflow_run_migrated", job_id=request.job_id, run_id=run_id, status=current.value
        )
        return self._tracked(
            run, request.experiment_name, params=request.params, tags=request.tags, status=current
        )

    def _ensure_experiment(self, name: str) -> str:
        """The experiment's id, created (or restored, and marked managed) as needed."""
        experiment = self._client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id: str = self._client.create_experiment(
                    name, tags={MANAGED_TAG: "true"}
                )
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment = self._client.get_experiment_by_name(name)  # lost a creation race
                if experiment is None:
                    raise
            else:
                self._log.info("mlflow_experiment_created", experiment=name, id=experiment_id)
                return experiment_id
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            # Its name is still taken, so no new one can be made; new runs need it back.
            self._client.restore_experiment(experiment_id)
            self._log.warning("mlflow_experiment_restored", experiment=name, id=experiment_id)
        if experiment.tags.get(MANAGED_TAG) != "true":
            self._client.set_experiment_tag(experiment_id, MANAGED_TAG, "true")
        return experiment_id

    def _find_run(self, experiment_ids: list[str], job_id: str) -> Run | None:
        """The oldest active run tagged with the job (there should be exactly one)."""
        runs = self._job_runs(experiment_ids, job_id, max_results=2)
        if len(runs) > 1:
            self._log.warning(
                "mlflow_duplicate_runs",
                job_id=job_id,
                run_ids=[r.info.run_id for r in runs],
                note="using the oldest",
            )
        return runs[0] if runs else None

    def _job_runs(self, experiment_ids: list[str], job_id: str, *, max_results: int) -> list[Run]:
        """The job's active runs, oldest first (start time, then run id, as MLflow's SQL
        store orders ties; sorted here too so that every replica agrees on the oldest)."""
        runs = self._client.search_runs(
            experiment_ids,
            filter_string=f"tags.`{JOB_ID_TAG}` = '{_literal(job_id)}'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=max_results,
            order_by=["attributes.start_time ASC"],
        )
        return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))

    def _settle(self, experiment_id: str, job_id: str, created: Run) -> Run:
        """The fence after a create: the job's run is the oldest active one. Another one can
        only exist if a lock ran out while held (a replica stalled past its TTL); then ours,
        unless it is the oldest, is marked and deleted, and the oldest is used. A replica
        only ever deletes the run it just made, never one another replica may be using."""
        runs = self._job_runs([experiment_id], job_id, max_results=_PAGE_SIZE)
        ours = created.info.run_id
        if all(r.info.run_id == ours for r in runs):
            return created
        oldest = runs[0]
        run_ids = [r.info.run_id for r in runs]
        if oldest.info.run_id == ours or ours not in run_ids:
            # ours is the oldest (another replica's newer run is deleted by that replica), or
            # was already deleted by someone: keep to the oldest
            self._log.warning("mlflow_duplicate_runs", job_id=job_id, run_ids=run_ids)
            return oldest
        self._client.set_tag(ours, DUPLICATE_OF_TAG, oldest.info.run_id)
        self._client.delete_run(ours)
        self._log.warning(
            "mlflow_duplicate_run_deleted",
            job_id=job_id,
            run_id=ours,
            kept=oldest.info.run_id,
            note="another replica created the job's run while this one did (its lock had "
            "run out); this replica's run was deleted and the oldest is used",
        )
        return oldest

    def _log_params(self, run: Run, params: Mapping[str, str]) -> None:
        """Log the params the run lacks; MLflow refuses (400) to change a logged value."""
        missing = [Param(k, v) for k, v in params.items() if run.data.params.get(k) != v]
        for start in range(0, len(missing), _PAGE_SIZE):
            self._client.log_batch(run.info.run_id, params=missing[start : start + _PAGE_SIZE])

    def _cancel_run(self, job_id: str, reason: str) -> TrackedRun | None:
        found = self._find_job_run(job_id)
        if found is None:
            return None
        run, experiment_name = found
        status = RunStatus(run.info.status)
        tags = {k: v for k, v in run.data.tags.items() if k.startswith(TAG_PREFIX)}
        if not status.terminal:
            self._client.set_tag(run.info.run_id, CANCEL_REASON_TAG, reason)
            self._client.set_terminated(run.info.run_id, status=RunStatus.KILLED.value)
            status = RunStatus.KILLED
            tags[CANCEL_REASON_TAG] = reason
        return self._tracked(run, experiment_name, params=run.data.params, tags=tags, status=status)

    def _find_job_run(self, job_id: str) -> tuple[Run, str] | None:
        """Search the managed experiments page by page (a cancel carries no job type)."""
        page_token: str | None = None
        while True:
            page = self._client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY,
                filter_string=f"tags.`{MANAGED_TAG}` = 'true'",
                max_results=_PAGE_SIZE,
                page_token=page_token,
            )
            names = {e.experiment_id: e.name for e in page}
            if names:
                run = self._find_run(list(names), job_id)
                if run is not None:
                    return run, names[run.info.experiment_id]
            page_token = page.token
            if not page_token:
                return None

    def _ping(self) -> None:
        self._client.search_experiments(max_results=1)

    def _tracked(
        self,
        run: Run,
        experiment_name: str,
        *,
        params: Mapping[str, str],
        tags: Mapping[str, str],
        status: RunStatus | None = None,
    ) -> TrackedRun:
        info = run.info
        return TrackedRun(
            run_id=info.run_id,
            experiment_id=info.experiment_id,
            experiment_name=experiment_name,
            run_url=run_url(self._ui_url, info.experiment_id, info.run_id),
            status=status or RunStatus(info.status),
            params=dict(params),
            tags=dict(tags),
        )

    # ------------------------------------------------------------------ errors

    async def _call(self, action: str, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` in a thread and translate MLflow's failures for the consumer runtime."""
        try:
            return await asyncio.to_thread(fn, *args)
        except MlflowException as exc:
            translated = await translate(exc, action, uri=self._uri, answers=self._answers)
            if translated is exc:
                raise
            raise translated from exc
        except (requests.RequestException, Urllib3HTTPError, OSError) as exc:
            raise TrackingUnavailable(unavailable_message(action, exc, self._uri)) from exc

    async def _answers(self) -> bool:
        """Whether MLflow serves a trivial request right now (after one failed)."""
        try:
            await asyncio.to_thread(self._ping)
        except (MlflowException, requests.RequestException, Urllib3HTTPError, OSError) as exc:
            self._log.warning("mlflow_health_check_failed", error=message(exc, self._uri))
            return False
        return True


def _literal(value: str) -> str:
    """A value safe inside a quoted MLflow filter literal (job ids are [a-z0-9-] anyway)."""
    if "'" in value or "\\" in value:
        raise TrackingRejected(f"job id {value!r} cannot be used in an MLflow search filter")
    return value
