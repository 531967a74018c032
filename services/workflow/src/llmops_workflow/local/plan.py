"""What the local backend runs: the stages of a rendered pipeline, as processes would need them.

The local backend executes the *same* rendered object the cluster backends apply (an Argo
``Workflow`` DAG, or the built-in ``List`` of stage Jobs), so a pipeline behaves alike on a
laptop and on a cluster: the same commands, arguments, environment, dependencies and retry
policy. This module reads them out of the manifest (pure, no I/O); parameters Argo would pass
between tasks (the MLflow run id) stay as ``{{...}}`` expressions that the runner fills from
the files earlier stages wrote.

Refused here (a :class:`~llmops_workflow.ports.WorkflowRejected`): multi-node training (one
machine has one node), templates that are not containers, and manifests of another shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Final

from llmops_workflow.ports import Manifest, WorkflowRejected
from llmops_workflow.render import names
from llmops_workflow.render.status import sort_stages

_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_INPUT: Final = re.compile(r"\{\{inputs\.parameters\.([A-Za-z0-9_-]+)\}\}")
_TASK_OUTPUT: Final = re.compile(
    r"^\{\{tasks\.([A-Za-z0-9_-]+)\.outputs\.parameters\.([A-Za-z0-9_-]+)\}\}$"
)
JOB_RETRY_BACKOFF_S: Final = 10.0
"""Kubernetes' own pod backoff for Jobs (10 s, doubling, capped at 6 minutes)."""


def parse_duration(text: Any) -> float:
    """Seconds of an Argo duration (``30s``, ``10m``, ``1h30m``, a bare number of seconds)."""
    value = str(text).strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise WorkflowRejected(f"not a duration: {value!r}")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


@dataclass(frozen=True)
class RetryPolicy:
    """Argo's ``retryStrategy`` (``OnError``): how often, and how long to wait before each."""

    limit: int = 0
    backoff_s: float = JOB_RETRY_BACKOFF_S
    factor: float = 2.0
    cap_s: float = 360.0

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based)."""
        return float(min(self.backoff_s * self.factor ** max(retry - 1, 0), self.cap_s))


@dataclass(frozen=True)
class LocalStage:
    """One stage: its process and what it waits for."""

    name: str
    argv: list[str]
    env: dict[str, str]
    depends: tuple[str, ...] = ()
    inputs: dict[str, str] = field(default_factory=dict)
    """Input parameter -> where its value comes from (a literal or a task output)."""
    outputs: dict[str, str] = field(default_factory=dict)
    """Output parameter -> the file name the stage writes it to (in the outputs directory)."""
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class LocalPlan:
    """Every stage of one pipeline, in an order that respects the dependencies."""

    name: str
    namespace: str
    job_id: str | None
    stages: tuple[LocalStage, ...]

    def stage(self, name: str) -> LocalStage:
        return next(s for s in self.stages if s.name == name)


def local_plan(manifest: Manifest) -> LocalPlan:
    """The plan of a rendered Workflow or ``List`` of stage Jobs."""
    kind = manifest.get("kind")
    if kind == "Workflow":
        return _from_workflow(manifest)
    if kind == "List":
        return _from_jobs(manifest)
    raise WorkflowRejected(f"the local backend runs Workflows and stage Job lists, not {kind!r}")


def output_file(path: str) -> str:
    """The file name an output parameter's ``valueFrom.path`` denotes in a stage's outputs
    directory (``/tmp/mlflow-run-id`` -> ``mlflow-run-id``): every pipeline has its own."""
    return PurePosixPath(path).name


def task_output(expression: str) -> tuple[str, str] | None:
    """``(task, parameter)`` of ``{{tasks.<task>.outputs.parameters.<parameter>}}``."""
    match = _TASK_OUTPUT.match(expression)
    return (match[1], match[2]) if match else None


def fill_inputs(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``{{inputs.parameters.<name>}}`` replaced by its value."""

    def value(match: re.Match[str]) -> str:
        if match[1] not in values:
            raise WorkflowRejected(f"input parameter {match[1]!r} has no value")
        return values[match[1]]

    return _INPUT.sub(value, text)


def _meta(manifest: Manifest) -> tuple[str, str, str | None]:
    meta = manifest.get("metadata") or {}
    labels = meta.get("labels") or {}
    try:
        return str(meta["name"]), str(meta["namespace"]), labels.get(names.JOB_ID_LABEL)
    except KeyError as exc:
        raise WorkflowRejected(f"the manifest has no metadata.{exc.args[0]}") from None


def _container(owner: str, container: Any) -> tuple[list[str], dict[str, str]]:
    if not isinstance(container, dict) or not container.get("command"):
        raise WorkflowRejected(f"{owner}: the local backend runs container templates only")
    argv = [str(part) for part in [*container["command"], *(container.get("args") or [])]]
    env = {str(e["name"]): str(e.get("value", "")) for e in container.get("env") or []}
    return argv, env


def _retry(strategy: Any) -> RetryPolicy:
    if not isinstance(strategy, dict):
        return RetryPolicy()
    backoff = strategy.get("backoff") or {}
    return RetryPolicy(
        limit=int(strategy.get("limit") or 0),
        backoff_s=parse_duration(backoff.get("duration", "10s")),
        factor=float(backoff.get("factor") or 2),
        cap_s=parse_duration(backoff["cap"]) if backoff.get("cap") else 3600.0,
    )


def _depends(task: dict[str, Any]) -> tuple[str, ...]:
    if task.get("dependencies"):
        return tuple(str(d) for d in task["dependencies"])
    text = str(task.get("depends") or "").strip()
    if not text:
        return ()
    if any(token in text for token in ("||", "!", ".")):
        raise WorkflowRejected(f"task {task.get('name')}: depends {text!r} is not a plain AND")
    return tuple(part.strip() for part in text.split("&&"))


def _from_workflow(manifest: Manifest) -> LocalPlan:
    name, namespace, job_id = _meta(manifest)
    spec = manifest.get("spec") or {}
    templates = {t["name"]: t for t in spec.get("templates") or [] if isinstance(t, dict)}
    entry = templates.get(spec.get("entrypoint"))
    if entry is None or "dag" not in entry:
        raise WorkflowRejected(f"workflow {name}: the entrypoint is not a DAG")
    tasks = entry["dag"].get("tasks") or []
    for task in tasks:
        if (sequence := task.get("withSequence")) is not None:
            count = str(sequence.get("count", "1"))
            raise WorkflowRejected(
                f"workflow {name}: task {task['name']} runs on {count} nodes; the local backend "
                "runs one (multi-node training needs Argo: WORKFLOW_BACKEND=argo)"
            )
    stages: list[LocalStage] = []
    for task in tasks:
        template = templates.get(task.get("template"))
        if template is None:
            raise WorkflowRejected(f"workflow {name}: task {task.get('name')} has no template")
        argv, env = _container(f"template {template['name']}", template.get("container"))
        arguments = (task.get("arguments") or {}).get("parameters") or []
        outputs = (template.get("outputs") or {}).get("parameters") or []
        stages.append(
            LocalStage(
                name=str(task["name"]),
                argv=argv,
                env=env,
                depends=_depends(task),
                inputs={str(p["name"]): str(p.get("value", "")) for p in arguments},
                outputs={
                    str(p["name"]): output_file(p["valueFrom"]["path"])
                    for p in outputs
                    if "path" in (p.get("valueFrom") or {})
                },
                retry=_retry(template.get("retryStrategy")),
            )
        )
    return LocalPlan(name, namespace, job_id, tuple(_ordered(name, stages)))


def _ordered(name: str, stages: list[LocalStage]) -> list[LocalStage]:
    """The stages in dependency order (the DAG's order when it already is one)."""
    done: list[LocalStage] = []
    pending = list(stages)
    while pending:
        ready = [s for s in pending if all(d in {x.name for x in done} for d in s.depends)]
        if not ready:
            unknown = sorted({d for s in pending for d in s.depends} - {s.name for s in stages})
            why = f"unknown tasks {unknown}" if unknown else "a cycle"
            raise WorkflowRejected(f"workflow {name}: the DAG has {why}")
        done.append(ready[0])
        pending.remove(ready[0])
    return done


def _from_jobs(manifest: Manifest) -> LocalPlan:
    jobs = sort_stages([i for i in manifest.get("items") or [] if isinstance(i, dict)])
    if not jobs:
        raise WorkflowRejected("the Job list is empty")
    name, namespace, job_id = _meta(jobs[0])
    workflow = (jobs[0]["metadata"].get("labels") or {}).get(names.NAME_LABEL) or name
    stages: list[LocalStage] = []
    for job in jobs:
        stage = (job["metadata"].get("labels") or {}).get(names.STAGE_LABEL)
        pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
        argv, env = _container(
            f"job {job['metadata'].get('name')}", (pod.get("containers") or [None])[0]
        )
        stages.append(
            LocalStage(
                name=str(stage or job["metadata"]["name"]),
                argv=argv,
                env=env,
                depends=(stages[-1].name,) if stages else (),
                retry=RetryPolicy(limit=int((job.get("spec") or {}).get("backoffLimit") or 0)),
            )
        )
    return LocalPlan(str(workflow), namespace, job_id, tuple(stages))
