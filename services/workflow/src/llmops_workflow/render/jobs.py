"""The built-in pipeline: one ``batch/v1`` Job per stage, for clusters without Argo
(``WORKFLOW_ORCHESTRATION_ENABLED=false``).

All four Jobs are created at once; every stage after the first is created ``suspend: true``
and the job backend's watcher round resumes it (``suspend: false``) when the previous stage
has succeeded, so the stages run in order without an orchestrator. There is no parameter
passing between Jobs, so every stage runs through the run-resolving wrapper (it finds the
job's MLflow run by its tag itself). Retries mirror Argo's ``OnError``: a ``podFailurePolicy``
ignores pod disruptions (node drain, preemption; up to ``backoffLimit``) and fails the Job on
the first non-zero exit of the trainer.

Multi-node training (``resources.nodes > 1``) needs the Argo backend and is refused here.
"""

from __future__ import annotations

from typing import Any

from llmops_shared.streams import NonRetryableError
from llmops_workflow.render import names
from llmops_workflow.render.metadata import object_annotations, object_labels, pod_labels
from llmops_workflow.render.request import RenderOptions, TrainRequest
from llmops_workflow.render.steps import RESOLVE_RUN, Stage, plan


class MultiNodeRefused(NonRetryableError):
    """The built-in Jobs have no multi-node pattern (use Argo): reported Failed and
    dead-lettered like any refused request."""


def _wrapped(stage: Stage) -> dict[str, Any]:
    container = stage.container()
    wrapper = ["python", "-c", RESOLVE_RUN]
    if container["command"] != wrapper:
        container["args"] = [*container["command"], *container["args"]]
        container["command"] = wrapper
    return container


def render_jobs(request: TrainRequest, options: RenderOptions) -> dict[str, Any]:
    """A ``v1 List`` of the four stage Jobs, first stage runnable, the others suspended."""
    if request.spec.resources.nodes > 1:
        raise MultiNodeRefused(
            f"resources.nodes={request.spec.resources.nodes}: multi-node training needs Argo "
            "Workflows (WORKFLOW_ORCHESTRATION_ENABLED=true, WORKFLOW_BACKEND=argo)"
        )
    the_plan = plan(request, options, run_id="")
    items = []
    for index, stage_name in enumerate(names.STAGES):
        stage = the_plan.stages[stage_name]
        pod: dict[str, Any] = {
            "restartPolicy": "Never",
            "containers": [_wrapped(stage)],
            **stage.pod_fields(),
        }
        if options.service_account:
            pod["serviceAccountName"] = options.service_account
        items.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": names.job_stage_name(request.job_id, stage_name),
                    "namespace": request.namespace,
                    "labels": {
                        **object_labels(request, the_plan),
                        names.NAME_LABEL: names.workflow_name(request.job_id),
                        names.STAGE_LABEL: stage_name,
                    },
                    "annotations": {
                        **object_annotations(request, the_plan),
                        names.STAGE_INDEX_ANNOTATION: str(index),
                    },
                },
                "spec": {
                    "suspend": index > 0,
                    "backoffLimit": options.retry_limit,
                    "activeDeadlineSeconds": options.active_deadline_seconds,
                    "ttlSecondsAfterFinished": options.ttl_seconds_after_failure,
                    "podFailurePolicy": {
                        "rules": [
                            {
                                "action": "Ignore",
                                "onPodConditions": [{"type": "DisruptionTarget"}],
                            },
                            {
                                "action": "FailJob",
                                "onExitCodes": {
                                    "containerName": "main",
                                    "operator": "NotIn",
                                    "values": [0],
                                },
                            },
                        ]
                    },
                    "template": {
                        "metadata": {
                            "labels": {**pod_labels(request), names.STAGE_LABEL: stage_name}
                        },
                        "spec": pod,
                    },
                },
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": items}
