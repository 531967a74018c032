"""Rendering rules (images, GPUs, node selector, retries, run-id wiring, multi-node), the
phase mapping of live objects, and the settings' contradictions."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_shared.events import Phase
from llmops_shared.specs import ImageTable, JobType
from llmops_workflow.config import BackendKind, WorkflowSettings
from llmops_workflow.render.status import next_stage_to_resume, observe_jobs, observe_workflow
from llmops_workflow.render.workflow import RUN_ID_FROM_PREPARE

from unit.workflow.cases import CASES, JOB_ID, SPECS

pytestmark = pytest.mark.unit


def _template(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [t for t in manifest["spec"]["templates"] if t["name"] == name]
    return found


def _env(template: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in template["container"]["env"]}


def test_identity_labels_and_lifetime() -> None:
    wf = CASES["sft_lora"]()
    assert wf["metadata"]["name"] == f"train-{JOB_ID}"
    labels = wf["metadata"]["labels"]
    assert labels["llm-ops.io/job-id"] == JOB_ID
    assert (labels["llm-ops.io/job-type"], labels["llm-ops.io/method"]) == ("SFT", "lora")
    spec = wf["spec"]
    assert spec["activeDeadlineSeconds"] == 7 * 24 * 3600
    assert spec["ttlStrategy"] == {"secondsAfterSuccess": 86400, "secondsAfterFailure": 604800}
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}


def test_dag_order_and_retry_on_infrastructure_errors_only() -> None:
    wf = CASES["sft_lora"]()
    tasks = {t["name"]: t for t in _template(wf, "pipeline")["dag"]["tasks"]}
    assert list(tasks) == ["prepare-data", "train", "evaluate", "register"]
    assert [tasks[n].get("depends") for n in tasks] == [None, "prepare-data", "train", "evaluate"]
    for name in ("prepare-data", "train", "evaluate", "register"):
        retry = _template(wf, name)["retryStrategy"]
        assert retry["retryPolicy"] == "OnError"
        assert retry["backoff"]["duration"] == "30s"


def test_the_run_id_flows_from_prepare_data_to_every_later_step() -> None:
    wf = CASES["sft_lora"]()
    prepare = _template(wf, "prepare-data")
    [output] = prepare["outputs"]["parameters"]
    assert output["valueFrom"] == {"path": "/tmp/mlflow-run-id"}
    assert "llmops.job_id" in prepare["container"]["command"][2]
    assert _env(prepare)["LLMOPS_JOB_ID"] == JOB_ID
    assert "MLFLOW_TRACKING_URI" in _env(prepare)
    tasks = {t["name"]: t for t in _template(wf, "pipeline")["dag"]["tasks"]}
    for name in ("train", "evaluate", "register"):
        [arg] = tasks[name]["arguments"]["parameters"]
        assert arg["value"] == RUN_ID_FROM_PREPARE
        assert _env(_template(wf, name))["MLFLOW_RUN_ID"] == "{{inputs.parameters.mlflow-run-id}}"


def test_gpus_node_selector_and_images() -> None:
    train = _template(CASES["sft_lora"](), "train")
    resources = train["container"]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "2"
    assert train["nodeSelector"] == {"nvidia.com/gpu.product": "A100"}
    assert train["container"]["image"] == ImageTable().train[JobType.SFT].gpu
    assert "--nproc_per_node=2" in train["container"]["args"]
    embedding = _template(CASES["embedding_full"](), "train")
    assert "nodeSelector" not in embedding  # gpu_type null: any GPU
    assert embedding["container"]["image"] == ImageTable().train[JobType.EMBEDDING].gpu


@pytest.mark.parametrize("name", ["cpu_fallback", "cpu_fallback_qlora", "cpu_use_gpu_false"])
def test_cpu_renders_have_no_gpu_anywhere(name: str) -> None:
    wf = CASES[name]()
    assert "nvidia.com/gpu" not in str(wf["spec"])
    train = _template(wf, "train")
    assert train["container"]["image"] == ImageTable().train[JobType.SFT].cpu
    assert "--precision=fp32" in train["container"]["args"]
    notes = wf["metadata"]["annotations"]
    assert ("llm-ops.io/cpu-fallback-reason" in notes) is (name != "cpu_use_gpu_false")
    assert wf["metadata"]["labels"]["llm-ops.io/device"] == "cpu"


def test_qlora_quantizes_on_gpu_and_falls_back_to_lora_on_cpu() -> None:
    assert "--quantization=nf4" in _template(CASES["sft_qlora"](), "train")["container"]["args"]
    cpu = CASES["cpu_fallback_qlora"]()
    args = _template(cpu, "train")["container"]["args"]
    assert "--method=lora" in args
    assert "--quantization=nf4" not in args
    assert "qlora needs CUDA" in cpu["metadata"]["annotations"]["llm-ops.io/cpu-fallback-reason"]


@pytest.mark.parametrize(
    ("name", "objective"),
    [("pretrain_full", "causal-lm"), ("rag_tuning_lora", "rag-qa"), ("rlhf_lora", "dpo"),
     ("embedding_full", "contrastive")],
)  # fmt: skip
def test_objective_per_job_type(name: str, objective: str) -> None:
    args = _template(CASES[name](), "train")["container"]["args"]
    assert f"--objective={objective}" in args
    assert any(a.startswith("--base-model-ref=") for a in args) is (name != "pretrain_full")


def test_multi_node_fans_out_with_a_rendezvous_service() -> None:
    wf = CASES["multi_node"]()
    tasks = {t["name"]: t for t in _template(wf, "pipeline")["dag"]["tasks"]}
    assert tasks["train"]["withSequence"] == {"count": "2"}
    assert tasks["train"]["depends"] == "prepare-data && rendezvous"
    train = _template(wf, "train")
    assert "--node_rank={{inputs.parameters.node-rank}}" in train["container"]["args"]
    assert "podAntiAffinity" in train["affinity"]
    rendezvous = _template(wf, "rendezvous")["resource"]
    assert rendezvous["setOwnerReference"] is True
    assert f"name: rdzv-{JOB_ID}" in rendezvous["manifest"]
    assert wf["metadata"]["annotations"]["llm-ops.io/steps-total"] == "5"
    assert SPECS["multi_node"].resources.nodes == 2


def test_builtin_jobs_first_stage_runnable_rest_suspended() -> None:
    items = CASES["jobs_sft_lora"]()["items"]
    assert [j["spec"]["suspend"] for j in items] == [False, True, True, True]
    for job in items:
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][:2] == ["python", "-c"]  # every stage resolves the run


def test_observe_workflow_phases() -> None:
    wf = CASES["sft_lora"]()
    assert observe_workflow(wf).phase is Phase.PENDING
    assert observe_workflow(wf).total == 4
    wf["status"] = {"phase": "Running", "progress": "1/4"}
    assert (observe_workflow(wf).phase, observe_workflow(wf).done) == (Phase.RUNNING, 1)
    wf["status"] = {"phase": "Error", "message": "pod deleted"}
    assert (observe_workflow(wf).phase, observe_workflow(wf).reason) == (
        Phase.FAILED,
        "pod deleted",
    )
    wf["spec"]["shutdown"] = "Terminate"
    assert observe_workflow(wf).phase is Phase.CANCELLED
    wf["status"] = {"phase": "Succeeded"}
    assert observe_workflow(wf).phase is Phase.SUCCEEDED  # finished before the terminate


def test_observe_jobs_and_the_sequencer() -> None:
    items = CASES["jobs_sft_lora"]()["items"]
    assert observe_jobs(items).phase is Phase.PENDING
    assert next_stage_to_resume(items) is None
    items[0]["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    assert observe_jobs(items).phase is Phase.RUNNING
    assert next_stage_to_resume(items) == f"train-{JOB_ID}"


def test_settings_refuse_contradictions() -> None:
    with pytest.raises(ValueError, match="needs WORKFLOW_ORCHESTRATION_ENABLED=true"):
        WorkflowSettings(
            _env_file=None, workflow_backend="argo", workflow_orchestration_enabled=False
        )
    with pytest.raises(ValueError, match="not supported"):
        WorkflowSettings(_env_file=None, workflow_orchestration_system="airflow")
    settings = WorkflowSettings(_env_file=None, environment="stg")
    assert settings.workflow_backend is BackendKind.MANIFESTS
    assert settings.namespace == "llm-ops-stg"
    assert settings.health_port == 8083
    assert WorkflowSettings(_env_file=None, argo_workflows_namespace="argo").namespace == "argo"
