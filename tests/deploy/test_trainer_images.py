"""deploy/docker/trainer.Dockerfile and docker-bake.json against the ImageTable and the renderer.

The trainer images are named by ``ImageTable`` (``{registry}/trainer-{job}:{tag}-{device}``) and
run by the rendered pipelines (``python``, ``torchrun``, ``-m llmops_trainer.<stage>``); the
bake file builds them from the trainer Dockerfile. These tests keep the four in agreement, and
reproduce the Dockerfiles' uv steps on exactly what their ``COPY`` instructions take from the
build context (no Docker engine needed): ``uv export`` resolves against those files and the lock.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.helpers import (
    BAKE_FILE,
    CHART,
    DOCKERFILE,
    ROOT,
    SERVICES,
    TRAINER_DOCKERFILE,
    Stage,
    copy_build_inputs,
    dockerignore,
    exported_packages,
    in_build_context,
    lock,
    parse_dockerfile,
    stage_chain,
    uv,
)
from llmops_shared.specs import ImageTable, JobType, TrainJobSpec
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC
from llmops_shared.specs.images import DEFAULT_TRAIN_REGISTRY, DEFAULT_TRAIN_TAG
from llmops_workflow.render import names
from llmops_workflow.render.jobs import render_jobs
from llmops_workflow.render.request import RenderOptions, TrainRequest
from llmops_workflow.render.workflow import render_workflow

pytestmark = pytest.mark.unit

DEVICES = ("gpu", "cpu")
TRAINER_DOCKERFILE_PATH = TRAINER_DOCKERFILE.relative_to(ROOT).as_posix()
SERVICE_DOCKERFILE_PATH = DOCKERFILE.relative_to(ROOT).as_posix()

ML_PACKAGES = {"torch", "transformers", "peft", "trl", "sentence-transformers", "accelerate"}
"""What a trainer needs and a service image must never carry."""
CUDA_PACKAGE = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")
"""torch and its CUDA-only dependencies (PyPI's Linux torch is the CUDA build)."""

Dockerfile = tuple[dict[str, str], list[Stage]]


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def trainer() -> Dockerfile:
    return parse_dockerfile(TRAINER_DOCKERFILE)


@pytest.fixture(scope="module")
def bake() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(BAKE_FILE.read_text())
    return data


def bake_defaults(bake: dict[str, Any]) -> dict[str, str]:
    return {name: str(v["default"]) for name, v in bake["variable"].items()}


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Bake's ``${NAME}`` interpolation (the only form the file uses)."""
    return re.sub(r"\$\{(\w+)\}", lambda m: variables[m[1]], value)


def group_targets(bake: dict[str, Any], group: str) -> list[str]:
    """The targets a group builds (groups may name groups)."""
    out: list[str] = []
    for name in bake["group"][group]["targets"]:
        out += group_targets(bake, name) if name in bake["group"] else [name]
    return out


def tags_of(bake: dict[str, Any], variables: dict[str, str] | None = None) -> dict[str, set[str]]:
    """Every target -> its tags, variables interpolated (defaults unless given)."""
    values = {**bake_defaults(bake), **(variables or {})}
    return {
        name: {interpolate(tag, values) for tag in target.get("tags", [])}
        for name, target in bake["target"].items()
    }


def default_train_images(table: ImageTable) -> dict[tuple[JobType, str], str]:
    return {
        (job, device): getattr(table.train[job], device) for job in JobType for device in DEVICES
    }


def stage(dockerfile: Dockerfile, name: str) -> Stage:
    [found] = [s for s in dockerfile[1] if s.name == name]
    return found


def runs(dockerfile: Dockerfile) -> dict[str, list[str]]:
    return {str(s.name): s.all("RUN") for s in dockerfile[1]}


def env_of(stage: Stage) -> dict[str, str]:
    """The stage's ``ENV NAME=value ...`` settings (the form the Dockerfiles use)."""
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            name, _, value = word.partition("=")
            env[name] = value
    return env


# ------------------------------------------------------------------------ bake <-> ImageTable


def test_the_bake_variables_are_the_image_tables_defaults(bake: dict[str, Any]) -> None:
    assert bake_defaults(bake) == {"REGISTRY": DEFAULT_TRAIN_REGISTRY, "TAG": DEFAULT_TRAIN_TAG}


@pytest.mark.parametrize(
    "variables",
    [{}, {"REGISTRY": "registry.example.com/ml/", "TAG": "1.2.3"}],
    ids=["defaults", "moved"],
)
def test_every_default_train_image_is_a_tag_of_exactly_one_trainer_target(
    bake: dict[str, Any], variables: dict[str, str]
) -> None:
    registry = variables.get("REGISTRY", DEFAULT_TRAIN_REGISTRY)
    tag = variables.get("TAG", DEFAULT_TRAIN_TAG)
    # the bake file's variables move the images exactly as the table's train_registry/train_tag
    table = ImageTable(train_registry=registry, train_tag=tag)
    tags = tags_of(bake, {"REGISTRY": registry.rstrip("/"), "TAG": tag})
    images = default_train_images(table)
    assert len(set(images.values())) == len(JobType) * len(DEVICES) == 10
    for (job, device), image in images.items():
        owners = [name for name, target_tags in tags.items() if image in target_tags]
        assert len(owners) == 1, (job, device, image, owners)
        target = bake["target"][owners[0]]
        assert target["dockerfile"] == TRAINER_DOCKERFILE_PATH
        assert target["args"]["DEVICE"] == device
    # and the `trainer` group builds exactly those images, nothing else
    trainer_targets = group_targets(bake, "trainer")
    built = set().union(*(tags[name] for name in trainer_targets))
    assert built == set(images.values())
    assert {
        name for name, t in bake["target"].items() if t["dockerfile"] == TRAINER_DOCKERFILE_PATH
    } == set(trainer_targets)


def test_one_trainer_image_per_device(bake: dict[str, Any]) -> None:
    """The stages take the job type as a flag: one image content per device, tagged per job."""
    devices = [bake["target"][name]["args"] for name in group_targets(bake, "trainer")]
    assert sorted(d["DEVICE"] for d in devices) == sorted(DEVICES)
    assert all(set(d) == {"DEVICE"} for d in devices)


def test_the_bake_targets_build_what_their_dockerfiles_declare(
    bake: dict[str, Any], trainer: Dockerfile
) -> None:
    service = parse_dockerfile(DOCKERFILE)
    parsed = {TRAINER_DOCKERFILE_PATH: trainer, SERVICE_DOCKERFILE_PATH: service}
    for name, target in bake["target"].items():
        assert target["context"] == "."  # the repository root: bake runs from there
        dockerfile = parsed[target["dockerfile"]]
        declared = set(dockerfile[0]) | {
            a.partition("=")[0] for s in dockerfile[1] for a in s.all("ARG")
        }
        assert set(target.get("args", {})) <= declared, name
        if "target" in target:
            assert target["target"] in {s.name for s in dockerfile[1]}, name
            assert target["target"] == dockerfile[1][-1].name  # the image `docker build` makes
    for group in bake["group"]:
        assert set(group_targets(bake, group)) <= set(bake["target"]), group
    assert set(group_targets(bake, "default")) == set(bake["target"])


def test_the_service_targets_tag_what_the_chart_pulls(bake: dict[str, Any]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    prefix = values["image"]["prefix"]
    assert group_targets(bake, "services") == list(SERVICES)
    tags = tags_of(bake)
    for service in SERVICES:
        target = bake["target"][service]
        assert target["dockerfile"] == SERVICE_DOCKERFILE_PATH
        # the tracking image also runs `mlflow server` (compose, Helm): psycopg comes with it
        extras = {"UV_EXTRAS": "--extra mlflow-server"} if service == "tracking" else {}
        assert target["args"] == {"SERVICE": service, **extras}
        # the chart's image: <repository>/<prefix><service>:<tag, default appVersion>
        assert tags[service] == {
            f"{DEFAULT_TRAIN_REGISTRY}/{prefix}{service}:{chart['appVersion']}"
        }


# ------------------------------------------------------------------- renderer <-> the images


def _spec(job: JobType, use_gpu: bool) -> TrainJobSpec:
    data = copy.deepcopy(SEED_TRAIN_JOB_SPEC)
    data["job_type"] = job.value
    data["dataset_ref"]["type"] = {
        JobType.PRETRAIN: "pretrain_corpus",
        JobType.SFT: "sft_pair",
        JobType.RAG_TUNING: "rag_qa",
        JobType.RLHF: "rlhf_pair",
        JobType.EMBEDDING: "embedding_pair",
    }[job]
    if job is JobType.PRETRAIN:
        data["base_model_ref"] = None
        data["method"] = "full"
    if job is JobType.EMBEDDING:
        data["model_family"] = "bert"
        data["method"] = "full"
    if not use_gpu:
        data["use_gpu"] = False
        data["resources"] = {"gpus": 0, "gpu_type": None, "nodes": 1}
    return TrainJobSpec.model_validate(data)


def containers(value: Any) -> Iterator[dict[str, Any]]:
    """Every container of a rendered manifest (a dict with an image and a command)."""
    if isinstance(value, dict):
        if "image" in value and "command" in value:
            yield value
        for item in value.values():
            yield from containers(item)
    elif isinstance(value, list):
        for item in value:
            yield from containers(item)


Rendered = list[tuple[str, JobType, bool, bool, dict[str, Any]]]


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    """Both renderers, every job type, use_gpu true and false, GPUs available or not."""
    out = []
    for job in JobType:
        for use_gpu in (True, False):
            for gpu_available in (True, False):
                request = TrainRequest(
                    job_id="3f9a2c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
                    namespace="llm-ops-dev",
                    spec=_spec(job, use_gpu),
                )
                options = RenderOptions(gpu_available=gpu_available)
                for kind, render in (("workflow", render_workflow), ("jobs", render_jobs)):
                    out.append((kind, job, use_gpu, gpu_available, render(request, options)))
    return out


def stage_commands(container: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The executables a container runs (its command, and what the ``python -c`` run-resolving
    wrapper execs: argv[1] after the script) and the ``-m`` modules."""
    argv = [*container["command"], *container.get("args", [])]
    executables = [argv[0]]
    if argv[:2] == ["python", "-c"]:
        executables.append(argv[3])
    modules = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-m"]
    return executables, modules


def test_rendered_pipelines_pull_only_images_the_bake_file_builds(
    bake: dict[str, Any], rendered: Rendered
) -> None:
    built = set().union(*tags_of(bake).values())
    table = ImageTable()
    seen: set[str] = set()
    for kind, job, use_gpu, gpu_available, manifest in rendered:
        images = {c["image"] for c in containers(manifest)}
        assert images, (kind, job)
        assert images <= built, (kind, job, use_gpu, gpu_available, images - built)
        device = "gpu" if use_gpu and gpu_available else "cpu"
        # the train stage runs on the device's image; the CPU-only stages on the CPU one
        assert getattr(table.train[job], device) in images
        assert table.train[job].cpu in images
        seen |= images
    assert seen == set(default_train_images(table).values())  # every trainer tag is used


def test_the_commands_the_renderer_runs_are_what_the_image_provides(
    trainer: Dockerfile, rendered: Rendered
) -> None:
    executables: set[str] = set()
    modules: set[str] = set()
    for *_, manifest in rendered:
        for container in containers(manifest):
            found, ms = stage_commands(container)
            executables |= set(found)
            modules |= set(ms)
    assert executables == {"python", "torchrun"}
    # the image checks, at build time, that each is in the virtualenv, first on PATH
    [check] = runs(trainer)["venv"]
    for executable in executables:
        assert f"test -x /app/.venv/bin/{executable}" in check
    runtime = stage(trainer, "runtime")
    assert env_of(runtime)["PATH"].startswith("/app/.venv/bin:")
    assert "--from=venv /app/.venv /app/.venv" in runtime.all("COPY")
    # every stage module the pipeline runs is checked by the build, and nothing else
    checked = set(re.findall(r"'(llmops_trainer\.\w+)'", check))
    assert checked == modules
    assert "llmops_trainer.train" in modules


def test_torchrun_is_torchs_console_script() -> None:
    """``torchrun`` comes with torch (a console script), not from the image's own files."""
    from importlib.metadata import distribution

    scripts = {e.name: e.value for e in distribution("torch").entry_points}
    assert scripts.get("torchrun") == "torch.distributed.run:main"


def test_the_wrapper_finds_mlflow_and_writes_where_it_may(trainer: Dockerfile) -> None:
    from llmops_workflow.render.steps import RESOLVE_RUN

    assert "from mlflow" in RESOLVE_RUN  # mlflow-skinny is in the trainer's closure (below)
    [check] = runs(trainer)["venv"]
    assert "import sys, mlflow, torch" in check
    # Argo reads output parameters from /tmp, world-writable in the base image (never touched)
    assert Path(names.RUN_ID_PATH).parent == Path("/tmp")
    assert not any("/tmp" in r for r in runs(trainer)["runtime"])


# ------------------------------------------------------------------------- the Dockerfile


def test_the_trainer_dockerfile_builds_one_venv_per_device(trainer: Dockerfile) -> None:
    global_args, stages = trainer
    assert global_args["PYTHON_IMAGE"].startswith("python:3.11-")  # requires-python
    assert global_args["DEVICE"] in DEVICES
    assert [s.name for s in stages] == [
        "builder",
        "venv-gpu",
        "venv-cpu",
        "venv",
        "runtime",
        "trainer-cpu",
        "trainer-gpu",
        "trainer",
    ]
    assert stage(trainer, "venv").base == "venv-${DEVICE}"
    assert stage(trainer, "trainer").base == "trainer-${DEVICE}"
    for device in DEVICES:
        chain = [s.name for s in stage_chain(stages, "trainer", {"DEVICE": device})]
        assert chain == ["runtime", f"trainer-{device}", "trainer"]
        venv = [s.name for s in stage_chain(stages, "venv", {"DEVICE": device})]
        assert venv == ["builder", f"venv-{device}", "venv"]
    [check] = [r for r in stage(trainer, "builder").all("RUN") if r.startswith("case")]
    assert re.search(r"in\s+cpu\|gpu\)", check)
    # the same pinned uv as the service images
    service_builder = parse_dockerfile(DOCKERFILE)[1][0]
    assert [a for a in stage(trainer, "builder").all("ARG") if a.startswith("UV_VERSION=")] == [
        a for a in service_builder.all("ARG") if a.startswith("UV_VERSION=")
    ]


def test_the_gpu_venv_is_the_lock_with_the_gpu_extra(trainer: Dockerfile) -> None:
    syncs = [r for r in runs(trainer)["venv-gpu"] if "uv sync" in r]
    assert len(syncs) == 2  # third-party dependencies first (a cached layer), then the trainer
    for sync in syncs:
        for flag in ("--frozen", "--no-dev", "--package llmops-trainer", "--extra gpu"):
            assert flag in sync
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]


def test_the_gpu_extra_is_installed_for_gpu_only(trainer: Dockerfile) -> None:
    text = {name: " ".join(r) for name, r in runs(trainer).items()}
    assert [name for name, t in text.items() if "--extra gpu" in t] == ["venv-gpu"]
    assert not any("bitsandbytes" in t or "--all-extras" in t for t in text.values())
    cpu = text["venv-cpu"]
    assert "--extra" not in cpu
    # the GPU-only environment of the NVIDIA container toolkit, in the GPU image only
    assert "NVIDIA_DRIVER_CAPABILITIES" in env_of(stage(trainer, "trainer-gpu"))
    for name in ("runtime", "trainer-cpu"):
        assert not any(k.startswith("NVIDIA_") for k in env_of(stage(trainer, name)))


def test_the_cpu_venv_takes_torch_from_the_cpu_index_and_the_rest_from_the_lock(
    trainer: Dockerfile,
) -> None:
    [args] = [a for a in stage(trainer, "venv-cpu").all("ARG") if a.startswith("TORCH_INDEX")]
    assert args == "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu"
    [install, finish] = runs(trainer)["venv-cpu"]
    exports = [c for c in install.split(";") if c.strip().startswith("uv export")]
    assert len(exports) == 2  # the torch pin, then the closure without CUDA
    for export in exports:
        for flag in ("--frozen", "--no-dev", "--package llmops-trainer", "--no-emit-workspace"):
            assert flag in export
    assert "--no-hashes" not in exports[1]  # the closure installs with the lock's hashes
    assert "--require-hashes" in install
    assert '--index-url "${TORCH_INDEX_URL}" "${torch_pin}"' in install
    assert "--no-deps" in install
    assert "uv pip install --python /app/.venv/bin/python --no-deps ./trainer" in finish
    assert "uv pip check" in finish


def test_the_cpu_prune_list_is_torchs_cuda_dependencies_in_the_lock(trainer: Dockerfile) -> None:
    """PyPI's Linux torch needs the CUDA stack through its ``sys_platform == 'linux'``
    dependencies; the CPU wheel needs none of them. When a relock changes them (a new CUDA
    major), this fails until the Dockerfile's ``--prune`` list follows."""
    [torch] = [p for p in lock()["package"] if p["name"] == "torch"]
    cuda = {
        d["name"] for d in torch["dependencies"] if "sys_platform == 'linux'" in d.get("marker", "")
    }
    [install, _] = runs(trainer)["venv-cpu"]
    _, closure = _venv_exports(install)
    pruned = {closure[i + 1] for i, word in enumerate(closure) if word == "--prune"}
    assert pruned == cuda
    assert all(CUDA_PACKAGE.match(name) for name in cuda)


def test_the_image_runs_as_a_non_root_user_with_a_writable_home(trainer: Dockerfile) -> None:
    runtime = stage(trainer, "runtime")
    [user] = runtime.all("USER")
    assert user == "10001:10001"  # like the services
    [create] = [r for r in runtime.all("RUN") if "useradd" in r]
    assert "--uid 10001" in create
    env = env_of(runtime)
    home = env["HOME"]
    assert f"--home-dir {home} --create-home" in create
    assert f"chown -R 10001:0 {home}" in create
    for name in ("HF_HOME", "XDG_CACHE_HOME", "TORCH_HOME", "TRITON_CACHE_DIR"):
        assert env[name].startswith(home + "/"), name
    assert env["PYTHONUNBUFFERED"] == "1"
    assert runtime.all("WORKDIR") == [home]
    # later stages only add settings; none changes the user back
    for name in ("trainer-cpu", "trainer-gpu", "trainer"):
        assert not stage(trainer, name).all("USER")
        assert not stage(trainer, name).all("RUN")


def test_no_entrypoint_hides_the_pipelines_command(trainer: Dockerfile) -> None:
    for s in trainer[1]:
        assert not s.all("ENTRYPOINT"), s.name
        assert not s.all("CMD"), s.name  # the base image's `python3` stays the default


def test_the_trainer_image_never_installs_a_service(trainer: Dockerfile) -> None:
    for s in trainer[1]:
        for args in s.all("COPY"):
            for source in shlex.split(args)[:-1]:
                if source.startswith("--"):
                    continue
                # manifests only: uv needs every member's pyproject.toml, never their sources
                if source.startswith(("shared", "services")):
                    assert source.endswith("/pyproject.toml"), (s.name, source)
        for run in s.all("RUN"):
            assert "--all-packages" not in run
            for service in ("shared", *SERVICES):
                assert f"llmops-{service}" not in run, (s.name, service)
    # and the runtime gets only the virtualenv: no build tools, no sources
    runtime = stage(trainer, "runtime")
    assert runtime.all("COPY") == ["--from=venv /app/.venv /app/.venv"]
    assert not any("uv" in r.split() for r in runtime.all("RUN"))


def test_the_trainer_build_context_has_no_service_sources() -> None:
    patterns = dockerignore(TRAINER_DOCKERFILE)
    assert in_build_context("uv.lock", patterns)
    assert in_build_context("trainer/src/llmops_trainer/train.py", patterns)
    assert in_build_context("services/gateway/pyproject.toml", patterns)
    assert not in_build_context("services/gateway/src/llmops_gateway/app.py", patterns)
    assert not in_build_context("shared/src/llmops_shared/__init__.py", patterns)
    assert not in_build_context(
        "trainer/src/llmops_trainer/__pycache__/train.cpython-311.pyc", patterns
    )
    assert not in_build_context(".venv/bin/python", patterns)


# ------------------------------------------------------- the uv steps, reproduced on the context


def _venv_exports(install: str) -> list[list[str]]:
    """The ``uv export`` commands of a RUN, as uv's arguments, printing to stdout instead of
    ``--output-file`` (they use no shell variable)."""
    commands = [c.strip() for c in install.split(";") if c.strip().startswith("uv export")]
    out = []
    for command in commands:
        argv = [a for a in shlex.split(command)[1:] if a != "--quiet"]
        at = argv.index("--output-file")
        out.append(argv[:at] + argv[at + 2 :])
    return out


@pytest.fixture(scope="module")
def trainer_context(
    tmp_path_factory: pytest.TempPathFactory, trainer: Dockerfile
) -> dict[str, Path]:
    """Per device, a directory holding exactly what the builder's COPYs put in /src."""
    out = {}
    for device in DEVICES:
        dest = tmp_path_factory.mktemp(f"trainer-{device}")
        chain = stage_chain(trainer[1], f"venv-{device}", {"DEVICE": device})
        copied = copy_build_inputs(TRAINER_DOCKERFILE, chain, dest)
        assert "trainer/pyproject.toml" in copied
        assert any(p.startswith("trainer/src/llmops_trainer/") for p in copied)
        assert not any(p.startswith(("services/", "shared/")) and "/src/" in p for p in copied)
        out[device] = dest
    return out


def _export(cwd: Path, *args: str) -> dict[str, str]:
    result = uv("export", "--no-header", "--no-annotate", "--no-hashes", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return exported_packages(result.stdout)


def test_the_build_context_holds_the_whole_workspace_of_the_lock(
    trainer_context: dict[str, Path], tmp_path: Path
) -> None:
    """``--frozen`` (what the builds use) does not notice a member manifest left out of the
    context; ``--locked`` does: uv then sees another workspace than the lock's."""
    service = tmp_path / "service"
    copy_build_inputs(
        DOCKERFILE, stage_chain(parse_dockerfile(DOCKERFILE)[1], "builder", {}), service
    )
    for where in (*trainer_context.values(), service):
        result = uv("export", "--locked", "--no-dev", "--package", "llmops-trainer", cwd=where)
        if result.returncode != 0:
            at_root = uv("export", "--locked", "--no-dev", "--package", "llmops-trainer")
            assert at_root.returncode == 0, f"uv.lock is out of date: {at_root.stderr}"
        assert result.returncode == 0, f"{where.name}: not the lock's workspace: {result.stderr}"


def test_the_gpu_closure_has_torch_with_cuda_and_bitsandbytes(
    trainer_context: dict[str, Path],
) -> None:
    packages = _export(
        trainer_context["gpu"],
        "--frozen",
        "--no-dev",
        "--package",
        "llmops-trainer",
        "--extra",
        "gpu",
    )
    assert set(packages) >= ML_PACKAGES
    assert {"bitsandbytes", "mlflow-skinny", "triton"} <= set(packages)
    assert any(name.startswith("nvidia-") for name in packages)


def test_the_cpu_closure_is_the_lock_without_cuda(
    trainer_context: dict[str, Path], trainer: Dockerfile
) -> None:
    """The CPU venv's own ``uv export`` commands, run as the Dockerfile runs them."""
    [install, _] = runs(trainer)["venv-cpu"]
    pin_export, closure_export = _venv_exports(install)
    where = trainer_context["cpu"]
    pinned = uv(*pin_export, cwd=where)
    assert pinned.returncode == 0, pinned.stderr
    # the sed of the Dockerfile: the first `torch==<version>` line
    [pin] = re.findall(r"^(torch==[^\s;]*)", pinned.stdout, re.M)
    closure = uv(*closure_export, cwd=where)
    assert closure.returncode == 0, closure.stderr
    assert "--hash=sha256:" in closure.stdout  # installed with --require-hashes
    cpu = exported_packages(closure.stdout)
    full = _export(where, "--frozen", "--no-dev", "--package", "llmops-trainer")
    [torch] = [p for p in lock()["package"] if p["name"] == "torch"]
    assert pin == f"torch=={full['torch']}" == f"torch=={torch['version']}"
    assert not [name for name in cpu if CUDA_PACKAGE.match(name)]
    # everything else of the locked closure, at the locked versions
    assert cpu == {name: v for name, v in full.items() if not CUDA_PACKAGE.match(name)}
    assert (ML_PACKAGES - {"torch"}) | {"mlflow-skinny"} <= set(cpu)
    assert "bitsandbytes" not in cpu


def test_service_images_carry_no_torch(tmp_path: Path) -> None:
    """The service Dockerfile's builder, reproduced: no service's closure has torch, its CUDA
    stack or the ML libraries (the trainer's closure has them, above)."""
    copied = copy_build_inputs(
        DOCKERFILE, stage_chain(parse_dockerfile(DOCKERFILE)[1], "builder", {}), tmp_path
    )
    assert "trainer/pyproject.toml" in copied
    assert not any(p.startswith("trainer/src/") for p in copied)
    for service in SERVICES:
        result = uv(
            "export", "--frozen", "--no-dev", "--package", f"llmops-{service}", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        members = set(re.findall(r"^-e \./(\S+)$", result.stdout, re.M))
        assert members == {"shared", f"services/{service}"}, service  # never the trainer
        packages = exported_packages(result.stdout)
        leaked = {n for n in packages if CUDA_PACKAGE.match(n) or n in ML_PACKAGES}
        assert not leaked, (service, leaked)
