"""The four stages as containers: image, command, arguments, environment and resources.

Shared by both renderers (the Argo Workflow and the built-in Jobs), so a stage runs the same
way whichever orchestrates it. The trainer images implement a small CLI contract (see
docs/workflow.md): ``python -m llmops_trainer.<stage> --flag=value ...``; the images
themselves are configuration (``ImageTable``, ``WORKFLOW_STEP_IMAGE``).

The MLflow run of a job is created by the tracking worker, concurrently with this pipeline,
so no event carries its id when the pipeline is rendered. The first stage resolves it: the
``RESOLVE_RUN`` wrapper searches MLflow for the run tagged ``llmops.job_id=<job id>`` (waiting
up to ``MLFLOW_RUN_WAIT_S`` for the tracking worker), writes its id to ``RUN_ID_PATH`` (an
Argo output parameter) and execs the stage with ``MLFLOW_RUN_ID`` set. Later Argo stages get
the id as an input parameter; the built-in Jobs, which have no parameter passing, run every
stage through the same wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from llmops_shared.specs import ImageChoice, JobType, TrainMethod, select_train_image
from llmops_workflow.render import names
from llmops_workflow.render.request import RenderOptions, TrainRequest

GPU_RESOURCE: Final = "nvidia.com/gpu"
MASTER_PORT: Final = 29500
SHM_VOLUME: Final = "dshm"

RESOLVE_RUN: Final = f"""import os, sys, time
outputs = os.environ.get("LLMOPS_OUTPUTS_DIR") or "{names.OUTPUTS_DIR}"
out = os.path.join(outputs, "{names.RUN_ID_PARAMETER}")
job = os.environ["LLMOPS_JOB_ID"]
run_id = os.environ.get("MLFLOW_RUN_ID", "")
if not run_id and os.environ.get("MLFLOW_TRACKING_URI"):
    from mlflow.tracking import MlflowClient
    wait = float(os.environ.get("MLFLOW_RUN_WAIT_S", "600"))
    query = "tags.`{names.JOB_ID_TAG}` = '%s'" % job
    client = MlflowClient()
    deadline = time.monotonic() + wait
    while not run_id:
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids, query, max_results=1) if ids else []
        if runs:
            run_id = runs[0].info.run_id
        elif time.monotonic() > deadline:
            sys.exit("no MLflow run tagged {names.JOB_ID_TAG}=%s after %ss" % (job, wait))
        else:
            time.sleep(2)
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as file:
    file.write(run_id)
if run_id:
    os.environ["MLFLOW_RUN_ID"] = run_id
os.execvp(sys.argv[1], sys.argv[1:])
"""
"""Resolve the job's MLflow run by its tag, publish the id, then exec the stage (argv).

Without an MLflow (``MLFLOW_TRACKING_URI`` empty) the id is empty and the stages train without
tracking; the file is written either way, since Argo fails a step whose output is missing."""

OBJECTIVE: Final = {
    JobType.PRETRAIN: "causal-lm",
    JobType.SFT: "sft",
    JobType.RAG_TUNING: "rag-qa",
    JobType.RLHF: "dpo",  # rlhf_pair records are preference pairs: DPO needs no reward model
    JobType.EMBEDDING: "contrastive",
}
EVAL_SUITE: Final = {
    JobType.PRETRAIN: "perplexity",
    JobType.SFT: "generation",
    JobType.RAG_TUNING: "rag-qa",
    JobType.RLHF: "preference",
    JobType.EMBEDDING: "retrieval",
}


@dataclass(frozen=True)
class Stage:
    """One stage's container and scheduling, independent of the orchestrator."""

    name: str
    image: str
    command: list[str]
    args: list[str]
    env: list[dict[str, Any]]
    resources: dict[str, dict[str, str]]
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)
    shm: bool = False

    def container(self) -> dict[str, Any]:
        """The Kubernetes container (Argo's ``container`` template field takes the same)."""
        out: dict[str, Any] = {
            "name": "main",
            "image": self.image,
            "command": list(self.command),
            "args": list(self.args),
            "env": [dict(e) for e in self.env],
            "resources": {k: dict(v) for k, v in self.resources.items()},
        }
        if self.shm:
            out["volumeMounts"] = [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}]
        return out

    def volumes(self) -> list[dict[str, Any]]:
        """PyTorch data loaders share tensors through /dev/shm (64 MiB by default in pods)."""
        return [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}}] if self.shm else []

    def pod_fields(self) -> dict[str, Any]:
        """The stage's node selector, tolerations and volumes, those it has: fields of a Job's
        pod spec, and of an Argo template alike."""
        out: dict[str, Any] = {}
        if self.node_selector:
            out["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            out["tolerations"] = [dict(t) for t in self.tolerations]
        if volumes := self.volumes():
            out["volumes"] = volumes
        return out


@dataclass(frozen=True)
class Plan:
    """Every stage of one job, plus what the renderers need to wire them."""

    train_image: ImageChoice
    stages: dict[str, Stage]
    nodes: int
    method_note: str | None = None

    @property
    def steps_total(self) -> int:
        """Pods of one successful run: one per stage, ``nodes`` for train."""
        return len(names.STAGES) - 1 + self.nodes


def uris(request: TrainRequest, options: RenderOptions) -> dict[str, str]:
    """Where the stages exchange data."""
    base = f"{options.artifact_root.rstrip('/')}/jobs/{request.job_id}"
    return {"data": f"{base}/data", "model": f"{base}/model", "eval": f"{base}/eval"}


def base_env(request: TrainRequest, options: RenderOptions) -> list[dict[str, Any]]:
    """What every stage gets: where MLflow is and which job it runs for."""
    env = [
        {"name": "MLFLOW_TRACKING_URI", "value": options.mlflow_tracking_uri},
        {"name": "LLMOPS_JOB_ID", "value": request.job_id},
        {"name": "MLFLOW_RUN_WAIT_S", "value": str(options.mlflow_run_wait_s)},
    ]
    if options.mlflow_artifacts_destination:
        env.append(
            {"name": "MLFLOW_ARTIFACTS_DESTINATION", "value": options.mlflow_artifacts_destination}
        )
    return env


def base_model_uri(request: TrainRequest, options: RenderOptions) -> str | None:
    """Where the stages load the base model from: the catalog's location, or for PRETRAIN
    (no base model) the configured init directory of the family (architecture and tokenizer)."""
    if request.spec.base_model_ref is None:
        if options.pretrain_init_uri:
            return options.pretrain_init_uri.format(model_family=request.spec.model_family)
        return None
    return request.base_model_uri


def dataset_pin_args(request: TrainRequest) -> list[str]:
    """prepare-data's flags that pin the dataset to its recorded content (none when the
    dataset is not versioned: the trainer then reads ``--dataset-uri`` as it is)."""
    pin = request.dataset_version
    if pin is None:
        return []
    return [
        f"--dataset-store={pin.backend}",
        f"--dataset-remote={pin.remote_uri}",
        f"--dataset-digest={pin.digest}",
        f"--dataset-id={pin.dataset_id}",
    ]


def _amounts(cpu: str, memory: str, gpus: int) -> dict[str, dict[str, str]]:
    amounts = {"cpu": cpu, "memory": memory}
    if gpus:
        amounts[GPU_RESOURCE] = str(gpus)
    # requests == limits: GPUs cannot be overcommitted, and a trainer that is throttled or
    # OOM-killed hours into a run costs more than one that does not schedule.
    return {"requests": amounts, "limits": dict(amounts)}


def _scheduling(request: TrainRequest, options: RenderOptions, gpu: bool) -> dict[str, Any]:
    if not gpu:
        return {}
    selector = {}
    if request.spec.resources.gpu_type:
        selector[options.gpu_type_node_label] = request.spec.resources.gpu_type
    return {
        "node_selector": selector,
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    }


def train_launcher(
    request: TrainRequest, plan_nodes: int, procs: int, *, node_rank: str
) -> list[str]:
    """``torchrun`` flags: standalone on one node; a static master (rank 0 behind the
    ``rdzv-<job_id>`` headless Service) on several."""
    if plan_nodes == 1:
        return ["--standalone", "--nnodes=1", f"--nproc_per_node={procs}"]
    master = f"{names.rendezvous_name(request.job_id)}.{request.namespace}.svc.cluster.local"
    return [
        f"--nnodes={plan_nodes}",
        f"--nproc_per_node={procs}",
        f"--node_rank={node_rank}",
        f"--master_addr={master}",
        f"--master_port={MASTER_PORT}",
    ]


def plan(
    request: TrainRequest, options: RenderOptions, *, run_id: str, node_rank: str = "0"
) -> Plan:
    """The stages of ``request``; ``run_id`` is how later stages spell the MLflow run id (an
    Argo parameter reference, or empty for the wrapper to resolve), ``node_rank`` the rank
    expression of a multi-node train."""
    spec = request.spec
    choice = select_train_image(spec, options.images, options.gpu_available)
    gpu = choice.device == "gpu"
    cpu_image = options.images.train[spec.job_type].cpu
    step_image = options.step_image or cpu_image
    eval_image = options.step_image or choice.image
    where = uris(request, options)
    env = base_env(request, options)
    run_env = [*env, {"name": "MLFLOW_RUN_ID", "value": run_id}] if run_id else env
    nodes = spec.resources.nodes
    gpus = spec.resources.gpus if gpu else 0
    method = spec.method
    method_note = None
    if method is TrainMethod.QLORA and not gpu:
        method = TrainMethod.LORA
        method_note = "qlora needs CUDA (4-bit bitsandbytes): training as lora on CPU"
    common = [
        f"--job-type={spec.job_type.value}",
        f"--model-family={spec.model_family}",
    ]
    if spec.base_model_ref:
        common.append(f"--base-model-ref={spec.base_model_ref}")
    if (model_uri := base_model_uri(request, options)) is not None:
        common.append(f"--base-model-uri={model_uri}")
    wrapper = ["python", "-c", RESOLVE_RUN]

    prepare = Stage(
        name="prepare-data",
        image=step_image,
        command=wrapper,
        args=[
            "python",
            "-m",
            "llmops_trainer.prepare_data",
            *common,
            f"--dataset-name={spec.dataset_ref.name}",
            f"--dataset-version={spec.dataset_ref.version}",
            f"--dataset-type={spec.dataset_ref.type}",
            f"--dataset-uri={spec.dataset_ref.storage_uri}",
            *dataset_pin_args(request),
            f"--max-seq-len={spec.hyperparams.max_seq_len}",
            f"--output-uri={where['data']}",
        ],
        env=env,
        resources=_amounts(options.step_cpu, options.step_memory, 0),
    )
    trainer = [
        *common,
        f"--method={method.value}",
        f"--objective={OBJECTIVE[spec.job_type]}",
        f"--data-uri={where['data']}",
        f"--output-uri={where['model']}",
        f"--lr={spec.hyperparams.lr}",
        f"--batch-size={spec.hyperparams.batch_size}",
        f"--num-epochs={spec.hyperparams.num_epochs}",
        f"--max-seq-len={spec.hyperparams.max_seq_len}",
        # CPUs lack fast half precision: fall back to float32 there, as serving does
        f"--precision={spec.hyperparams.precision.value if gpu else 'fp32'}",
        f"--save-format={spec.output.save_format.value}",
        f"--artifact-name={spec.output.artifact_name}",
    ]
    if method is TrainMethod.QLORA:
        trainer.append("--quantization=nf4")
    train = Stage(
        name="train",
        image=choice.image,
        command=["torchrun"],
        args=[
            *train_launcher(request, nodes, max(gpus, 1), node_rank=node_rank),
            "-m",
            "llmops_trainer.train",
            *trainer,
        ],
        env=run_env,
        resources=_amounts(options.train_cpu, options.train_memory, gpus),
        shm=True,
        **_scheduling(request, options, gpu),
    )
    evaluate = Stage(
        name="evaluate",
        image=eval_image,
        command=["python"],
        args=[
            "-m",
            "llmops_trainer.evaluate",
            *common,
            f"--suite={EVAL_SUITE[spec.job_type]}",
            f"--model-uri={where['model']}",
            f"--data-uri={where['data']}",
            f"--max-seq-len={spec.hyperparams.max_seq_len}",
            f"--batch-size={spec.hyperparams.batch_size}",
            f"--output-uri={where['eval']}",
        ],
        env=run_env,
        resources=_amounts(options.step_cpu, options.step_memory, 1 if gpu else 0),
        **_scheduling(request, options, gpu),
    )
    register = Stage(
        name="register",
        image=step_image,
        command=["python"],
        args=[
            "-m",
            "llmops_trainer.register",
            *common,
            f"--model-uri={where['model']}",
            f"--eval-uri={where['eval']}",
            f"--model-name={spec.output.artifact_name}",
            f"--save-format={spec.output.save_format.value}",
            f"--dataset-name={spec.dataset_ref.name}",
            f"--dataset-version={spec.dataset_ref.version}",
        ],
        env=run_env,
        resources=_amounts(options.step_cpu, options.step_memory, 0),
    )
    stages = {s.name: s for s in (prepare, train, evaluate, register)}
    return Plan(train_image=choice, stages=stages, nodes=nodes, method_note=method_note)
