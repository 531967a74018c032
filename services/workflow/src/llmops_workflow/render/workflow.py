"""The Argo ``Workflow`` of a training job (``argoproj.io/v1alpha1``).

A DAG ``prepare-data -> train -> evaluate -> register``:

* ``prepare-data`` resolves the job's MLflow run (see :mod:`.steps`) and exposes its id as the
  output parameter ``mlflow-run-id`` (also a global output, visible in ``argo get``); every
  later task receives it as the input parameter ``mlflow-run-id`` and its container as the
  environment variable ``MLFLOW_RUN_ID`` (Argo templates cannot read other tasks' outputs
  directly; the DAG passes ``{{tasks.prepare-data.outputs.parameters.mlflow-run-id}}``);
* ``register`` exposes the model version it created as the output parameter
  ``model-version`` (JSON, :class:`~llmops_shared.events.RegisteredModel`), which the watcher
  reads from the node's outputs and reports, so the gateway can deploy exactly that artifact;
* every template retries on infrastructure errors only (``retryPolicy: OnError``: a pod
  deleted, a node lost, an image pull that timed out) with exponential backoff; a trainer that
  exits non-zero fails the pipeline at once;
* ``activeDeadlineSeconds``, ``ttlStrategy`` and ``podGC`` bound its life;
* ``nodes > 1``: a ``rendezvous`` task applies a headless Service ``rdzv-<job_id>`` (owned by
  the Workflow, so deleted with it) selecting the rank-0 pod; ``train`` fans out with
  ``withSequence`` into one pod per node, each ``torchrun --node_rank={{item}}`` with the
  Service as master address, spread over hosts by pod anti-affinity.
"""

from __future__ import annotations

from typing import Any

from llmops_workflow.render import names
from llmops_workflow.render.metadata import object_annotations, object_labels, pod_labels
from llmops_workflow.render.request import RenderOptions, TrainRequest
from llmops_workflow.render.steps import MASTER_PORT, Plan, Stage, plan

RUN_ID_INPUT = f"{{{{inputs.parameters.{names.RUN_ID_PARAMETER}}}}}"
RUN_ID_FROM_PREPARE = f"{{{{tasks.prepare-data.outputs.parameters.{names.RUN_ID_PARAMETER}}}}}"
NODE_RANK_INPUT = "{{inputs.parameters.node-rank}}"


def retry_strategy(options: RenderOptions) -> dict[str, Any]:
    """Retry on infrastructure errors (``OnError``), never on a failed trainer."""
    return {
        "limit": str(options.retry_limit),  # IntOrString: the schema's string form
        "retryPolicy": "OnError",
        "backoff": {
            "duration": options.retry_backoff,
            "factor": str(options.retry_backoff_factor),
            # `cap` limits one delay; `maxDuration` would be a deadline from the first attempt's
            # start, after which a stage that ran longer is never retried.
            "cap": options.retry_backoff_max,
        },
    }


def _template(
    stage: Stage,
    options: RenderOptions,
    *,
    inputs: list[str],
    outputs: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    affinity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    template: dict[str, Any] = {
        "name": stage.name,
        "container": stage.container(),
        "retryStrategy": retry_strategy(options),
        "metadata": {"labels": {names.STAGE_LABEL: stage.name, **(labels or {})}},
    }
    if inputs:
        template["inputs"] = {"parameters": [{"name": p} for p in inputs]}
    if outputs:
        template["outputs"] = {"parameters": outputs}
    template.update(stage.pod_fields())
    if affinity:
        template["affinity"] = affinity
    return template


def _rendezvous_service(request: TrainRequest) -> str:
    """The headless Service of rank 0 (YAML text: a resource template's manifest is a string).

    ``publishNotReadyAddresses``: the trainer pods have no readiness probe to pass before the
    other ranks must find rank 0."""
    return "\n".join(
        [
            "apiVersion: v1",
            "kind: Service",
            "metadata:",
            f"  name: {names.rendezvous_name(request.job_id)}",
            f"  namespace: {request.namespace}",
            "  labels:",
            f"    {names.MANAGED_BY_LABEL}: {names.MANAGED_BY}",
            f"    {names.JOB_ID_LABEL}: {request.job_id}",
            "spec:",
            "  clusterIP: None",
            "  publishNotReadyAddresses: true",
            "  selector:",
            f"    {names.JOB_ID_LABEL}: {request.job_id}",
            f"    {names.STAGE_LABEL}: train",
            f'    {names.NODE_RANK_LABEL}: "0"',
            "  ports:",
            "  - name: torch-distributed",
            f"    port: {MASTER_PORT}",
            f"    targetPort: {MASTER_PORT}",
            "",
        ]
    )


def _tasks(request: TrainRequest, the_plan: Plan) -> list[dict[str, Any]]:
    run_arg = {"parameters": [{"name": names.RUN_ID_PARAMETER, "value": RUN_ID_FROM_PREPARE}]}
    train: dict[str, Any] = {
        "name": "train",
        "template": "train",
        "depends": "prepare-data",
        "arguments": run_arg,
    }
    tasks: list[dict[str, Any]] = [{"name": "prepare-data", "template": "prepare-data"}]
    if the_plan.nodes > 1:
        tasks.append({"name": "rendezvous", "template": "rendezvous"})
        train["depends"] = "prepare-data && rendezvous"
        train["withSequence"] = {"count": str(the_plan.nodes)}
        train["arguments"] = {
            "parameters": [*run_arg["parameters"], {"name": "node-rank", "value": "{{item}}"}]
        }
    tasks += [
        train,
        {"name": "evaluate", "template": "evaluate", "depends": "train", "arguments": run_arg},
        {"name": "register", "template": "register", "depends": "evaluate", "arguments": run_arg},
    ]
    return tasks


def render_workflow(request: TrainRequest, options: RenderOptions) -> dict[str, Any]:
    """The Workflow for ``request``: ``train-<job_id>`` in ``request.namespace``."""
    multi = request.spec.resources.nodes > 1
    the_plan = plan(
        request,
        options,
        run_id=RUN_ID_INPUT,
        node_rank=NODE_RANK_INPUT if multi else "0",
    )
    stages = the_plan.stages
    run_output = {
        "name": names.RUN_ID_PARAMETER,
        "globalName": names.RUN_ID_PARAMETER,
        "valueFrom": {"path": names.RUN_ID_PATH},
    }
    train_inputs = [names.RUN_ID_PARAMETER]
    train_labels: dict[str, str] = {}
    affinity = None
    if multi:
        train_inputs.append("node-rank")
        train_labels[names.NODE_RANK_LABEL] = NODE_RANK_INPUT
        affinity = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {
                            "matchLabels": {
                                names.JOB_ID_LABEL: request.job_id,
                                names.STAGE_LABEL: "train",
                            }
                        },
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    templates: list[dict[str, Any]] = [
        {"name": "pipeline", "dag": {"tasks": _tasks(request, the_plan)}},
        _template(stages["prepare-data"], options, inputs=[], outputs=[run_output]),
        _template(
            stages["train"], options, inputs=train_inputs, labels=train_labels, affinity=affinity
        ),
        _template(stages["evaluate"], options, inputs=[names.RUN_ID_PARAMETER]),
        _template(
            stages["register"],
            options,
            inputs=[names.RUN_ID_PARAMETER],
            outputs=[
                {
                    "name": names.MODEL_VERSION_PARAMETER,
                    "globalName": names.MODEL_VERSION_PARAMETER,
                    "valueFrom": {"path": names.MODEL_VERSION_PATH},
                }
            ],
        ),
    ]
    if multi:
        templates.append(
            {
                "name": "rendezvous",
                "resource": {
                    "action": "apply",
                    "setOwnerReference": True,
                    "manifest": _rendezvous_service(request),
                },
                "retryStrategy": retry_strategy(options),
            }
        )
    spec: dict[str, Any] = {
        "entrypoint": "pipeline",
        "activeDeadlineSeconds": options.active_deadline_seconds,
        "ttlStrategy": {
            "secondsAfterSuccess": options.ttl_seconds_after_success,
            "secondsAfterFailure": options.ttl_seconds_after_failure,
        },
        "podGC": {"strategy": options.pod_gc_strategy},
        "podMetadata": {"labels": pod_labels(request)},
        "templates": templates,
    }
    if options.service_account:
        spec["serviceAccountName"] = options.service_account
    return {
        "apiVersion": names.ARGO_API_VERSION,
        "kind": "Workflow",
        "metadata": {
            "name": names.workflow_name(request.job_id),
            "namespace": request.namespace,
            "labels": object_labels(request, the_plan),
            "annotations": object_annotations(request, the_plan),
        },
        "spec": spec,
    }
