"""Handlers of ``llmops.models`` and the reconcile of ``POST /poll``.

``ModelVersionRegistered`` and ``ModelVersionChanged`` are handled alike: make
``{values_path}/{run_id}.yaml`` right for the version, then return one ``model_version`` status
event (entity id ``<model>/<version>``) for the runtime to commit with the ack:

* ``Succeeded`` with ``details`` =
  :class:`~llmops_shared.events.payloads.details.ModelVersionDetails`, ``action`` one of
  ``created | updated | regenerated | unchanged | skipped`` (a version without a run id is
  skipped: there is no file to write);
* ``Failed`` only for what retrying cannot fix: the template does not parse, the values path is
  a file, the run id cannot name a file (``^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$``), MLflow says the
  run is gone (no experiment id to write), the file is a symlink or cannot be edited safely...
  Outages raise ``DependencyUnavailableError`` out of the handler (the consumer
  pauses, the event stays pending); other errors are retried by the runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Final

from pydantic import BaseModel

from llmops_github_sync.ports import (
    ModelRegistry,
    ModelVersionRecord,
    Plan,
    RunNotFound,
    SyncRejected,
    ValuesRepository,
    valid_run_id,
)
from llmops_github_sync.values import TemplateError, load_template, plan_file
from llmops_github_sync.values_facts import RenderOptions, VersionFacts, max_position_embeddings
from llmops_shared.dispatch import Dispatcher
from llmops_shared.events import (
    Envelope,
    Event,
    ModelVersionRegistered,
    Phase,
    StatusEntity,
    reply_status,
)
from llmops_shared.events.payloads.details import ModelVersionDetails
from llmops_shared.events.payloads.models import model_version_id
from llmops_shared.logging import get_logger

REPORTER: Final = "github-sync"
SKIPPED_NO_RUN: Final = "skipped: the model version has no run id"
_log = get_logger(__name__)
_status: Final = partial(reply_status, StatusEntity.MODEL_VERSION, reporter=REPORTER)
"""The ``model_version`` status event answering a handled event."""


class MlflowNotConfigured(Exception):
    """A lookup needs MLflow and MLFLOW_TRACKING_URI is not set."""


@dataclass
class SyncPorts:
    """What the handlers are bound to in ``app.py``."""

    repository: ValuesRepository
    registry: ModelRegistry | None = None
    template_path: Path | None = None
    options: RenderOptions = field(default_factory=RenderOptions)
    values_path: str = ""

    def path_for(self, run_id: str) -> str:
        return f"{self.values_path}/{run_id}.yaml" if self.values_path else f"{run_id}.yaml"


async def sync_version(event: Event, version: ModelVersionRegistered, ports: SyncPorts) -> Envelope:
    """Make the run's values file right for ``version``; the status to report."""
    entity = model_version_id(version.model_name, version.version)
    log = _log.bind(model_version=entity, run_id=version.run_id)
    backend = ports.repository.name
    if not version.run_id:
        skipped = ModelVersionDetails(
            path=None,
            action="skipped",
            commit=None,
            backend=backend,
            pull_request=None,
            max_model_len=None,
            capped=False,
        )
        return _status(event, entity, Phase.SUCCEEDED, reason=SKIPPED_NO_RUN, details=skipped)
    if not valid_run_id(version.run_id):
        reason = invalid_run_id_reason(version.run_id)
        log.error("values_run_id_invalid", reason=reason)
        return _status(event, entity, Phase.FAILED, reason=reason)
    path = ports.path_for(version.run_id)
    try:
        template = load_template(ports.template_path)
    except TemplateError as exc:
        log.error("values_template_invalid", reason=str(exc))
        return _status(event, entity, Phase.FAILED, reason=str(exc))
    try:
        experiment = version.experiment_id or await _experiment_of(version.run_id, ports)
    except MlflowNotConfigured as exc:
        return _status(event, entity, Phase.FAILED, reason=str(exc))
    except RunNotFound as exc:
        # the run is gone: its artifacts (the model the file points at) are gone with it;
        # no file is written, and the event is settled instead of stalling the consumer
        reason = f"no values file: {exc}"
        log.error("values_run_not_found", reason=reason)
        return _status(event, entity, Phase.FAILED, reason=reason)
    facts = VersionFacts(
        model_name=version.model_name,
        version=version.version,
        run_id=version.run_id,
        experiment_id=experiment,
        created_at=version.created_at,
        max_position_embeddings=max_position_embeddings(version.tags),
    )
    decide = partial(plan_file, path, template=template, facts=facts, options=ports.options)
    try:
        result = await ports.repository.sync_file(path, decide, run_id=version.run_id)
    except SyncRejected as exc:
        log.error("values_sync_rejected", reason=str(exc))
        return _status(event, entity, Phase.FAILED, reason=str(exc))
    plan = result.plans[0]
    log.info(
        "values_synced",
        path=path,
        action=plan.action,
        commit=result.commit,
        pull_request=result.pull_request,
    )
    reason = f"{path}: {plan.action}"
    if result.commit:
        reason += f" in {result.commit[:12]}"
    if result.pull_request:
        reason += f" (pull request {result.pull_request})"
    if plan.note:
        reason += f"; {plan.note}"
    details = ModelVersionDetails(
        path=path,
        action=plan.action,
        commit=result.commit,
        backend=backend,
        pull_request=result.pull_request,
        max_model_len=plan.max_model_len,
        capped=plan.capped,
    )
    return _status(event, entity, Phase.SUCCEEDED, reason=reason, details=details)


handle_models_event: Final[Dispatcher[SyncPorts]] = Dispatcher(
    "github_sync", {ModelVersionRegistered: sync_version}
)
"""The handler of ``llmops.models``: ``handler(event, ports)`` (``ModelVersionChanged`` is a
``ModelVersionRegistered``: both are synced); other types are skipped."""


def invalid_run_id_reason(run_id: str) -> str:
    shown = run_id if len(run_id) <= 80 else run_id[:77] + "..."
    return (
        f"run id {shown!r} cannot name a values file: it must be 1-64 letters, digits, '_' "
        "or '-', starting with a letter or digit"
    )


async def _experiment_of(run_id: str, ports: SyncPorts) -> str:
    if ports.registry is None:
        raise MlflowNotConfigured(
            f"the event has no experiment_id and MLFLOW_TRACKING_URI is not set to look up run "
            f"{run_id}"
        )
    return await ports.registry.experiment_of(run_id)


# ---------------------------------------------------------------------------- reconcile


class ReconcileReport(BaseModel):
    """The answer of ``POST /poll``."""

    versions: int
    skipped_without_run: int
    skipped_invalid_run_id: int = 0
    """Versions whose run id cannot name a values file (``../x``, ``a/b``...)."""
    skipped_missing_run: int = 0
    """Versions whose run MLflow cannot give (deleted): no experiment id to write."""
    files: int
    created: int
    updated: int
    regenerated: int
    unchanged: int
    commit: str | None
    pull_request: str | None
    backend: str
    capped: list[str]


async def reconcile(ports: SyncPorts) -> ReconcileReport:
    """List every model version in MLflow and make every values file right in ONE commit.

    Several versions of one run share its file: the most recently created one wins. Versions
    without a run, with a run id that cannot name a file, or whose run MLflow no longer has are
    skipped and counted. Raises ``MlflowNotConfigured``, ``TemplateError``, ``SyncRejected`` or
    ``DependencyUnavailableError``; the API maps them to 4xx/5xx answers.
    """
    if ports.registry is None:
        raise MlflowNotConfigured("MLFLOW_TRACKING_URI is not set: nothing to reconcile from")
    versions = await ports.registry.list_versions()
    template = load_template(ports.template_path)
    latest: dict[str, ModelVersionRecord] = {}
    skipped = invalid = missing = 0
    for record in versions:
        if not record.run_id:
            skipped += 1
            continue
        if not valid_run_id(record.run_id):
            invalid += 1
            _log.warning("values_run_id_invalid", reason=invalid_run_id_reason(record.run_id))
            continue
        current = latest.get(record.run_id)
        if current is None or _newer(record, current):
            latest[record.run_id] = record
    facts: dict[str, VersionFacts] = {}
    for run_id, r in sorted(latest.items()):
        experiment = r.experiment_id
        if r.run_missing is None and not experiment:
            try:
                experiment = await _experiment_of(run_id, ports)
            except RunNotFound as exc:
                r = replace(r, run_missing=str(exc))
        if r.run_missing is not None or not experiment:
            missing += 1
            _log.warning("values_run_not_found", run_id=run_id, reason=r.run_missing)
            continue
        facts[ports.path_for(run_id)] = VersionFacts(
            model_name=r.model_name,
            version=r.version,
            run_id=run_id,
            experiment_id=experiment,
            created_at=r.created_at,
            max_position_embeddings=max_position_embeddings(r.tags),
        )

    def decide(path: str, current: bytes | None) -> Plan:
        return plan_file(path, current, template=template, facts=facts[path], options=ports.options)

    result = await ports.repository.sync_files(list(facts), decide, batch_message)
    counts = {a: sum(p.action == a for p in result.plans) for a in _ACTIONS}
    report = ReconcileReport(
        versions=len(versions),
        skipped_without_run=skipped,
        skipped_invalid_run_id=invalid,
        skipped_missing_run=missing,
        files=len(facts),
        commit=result.commit,
        pull_request=result.pull_request,
        backend=ports.repository.name,
        capped=sorted(p.path for p in result.plans if p.capped),
        **counts,
    )
    _log.info("values_reconciled", **report.model_dump())
    return report


_ACTIONS: Final = ("created", "updated", "regenerated", "unchanged")


def batch_message(plans: Sequence[Plan]) -> str:
    """One commit message for a reconcile: a summary line, then one line per file."""
    counts = {a: sum(p.action == a for p in plans) for a in _ACTIONS}
    summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    lines = [f"github-sync: reconcile {len(plans)} values files with MLflow ({summary})", ""]
    for plan in plans:
        line = f"- {plan.path}: {plan.action}"
        if plan.action == "regenerated":
            line += " (was not a YAML mapping; the old content stays in history)"
        if plan.note:
            line += f" ({plan.note})"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _newer(a: ModelVersionRecord, b: ModelVersionRecord) -> bool:
    return (a.created_at, _version_key(a.version)) > (b.created_at, _version_key(b.version))


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)
