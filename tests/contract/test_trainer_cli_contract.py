"""What the pipeline runs is what the trainer accepts: every stage of every rendered pipeline
(each job type, method, device, multi-node, the built-in Jobs, with and without a base model
location and a pinned dataset) parses with the trainer's own command line.

The renderer (services/workflow) and the trainer (trainer/) are written apart and talk only
through this command line; a flag renamed on one side would otherwise show only when a
pipeline fails on a cluster.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import typer

from llmops_workflow.render.steps import RESOLVE_RUN

from unit.workflow.cases import CASES

pytestmark = pytest.mark.contract


def stage_commands(manifest: dict[str, Any]) -> list[list[str]]:
    """The command lines of a Workflow's or a Job list's containers."""
    if manifest["kind"] == "List":
        containers = [j["spec"]["template"]["spec"]["containers"][0] for j in manifest["items"]]
    else:
        containers = [t["container"] for t in manifest["spec"]["templates"] if "container" in t]
    return [[*c["command"], *c.get("args", [])] for c in containers]


def trainer_call(argv: list[str]) -> tuple[str, list[str]]:
    """``(module, args)`` of a stage's argv, after the run wrapper and the launcher."""
    if argv[:3] == ["python", "-c", RESOLVE_RUN]:
        argv = argv[3:]
    assert argv[0] in ("python", "torchrun"), argv
    at = argv.index("-m")
    return argv[at + 1], argv[at + 2 :]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_stage_parses_with_the_trainer(case: str) -> None:
    commands = stage_commands(CASES[case]())
    modules = []
    for argv in commands:
        module_name, args = trainer_call(argv)
        module = importlib.import_module(module_name)
        command = typer.main.get_command(module.app)
        command.make_context(module_name, list(args))  # raises on an unknown or bad flag
        modules.append(module_name)
    assert sorted(set(modules)) == [
        "llmops_trainer.evaluate",
        "llmops_trainer.prepare_data",
        "llmops_trainer.register",
        "llmops_trainer.train",
    ]


def test_a_renamed_or_missing_flag_would_be_caught() -> None:
    """The check above can fail: a flag the trainer does not know, or one it needs and does
    not get, is refused."""
    module = importlib.import_module("llmops_trainer.register")
    command = typer.main.get_command(module.app)
    _, args = trainer_call(stage_commands(CASES["sft_lora"]())[-1])
    with pytest.raises(typer.TyperException, match="No such option: --model-nam"):
        command.make_context("register", [a.replace("--model-name", "--model-nam") for a in args])
    with pytest.raises(typer.TyperException, match="Missing parameter: eval_uri"):
        command.make_context("register", [a for a in args if not a.startswith("--eval-uri")])
