"""The stages' command lines: ``--flag=value`` and ``--flag value``, one-line refusals with
exit code 2, and the ``llmops-trainer <stage>`` script. Uses register without MLflow (no
torch) as the stage under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops_trainer import cli, register

pytestmark = pytest.mark.unit


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMOPS_OUTPUTS_DIR", str(tmp_path / "outputs"))
    return tmp_path / "outputs"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "llmops-model.json").write_text("{}")
    return model


def base_args(model: Path, tmp_path: Path) -> list[str]:
    return [
        "--job-type=SFT",
        "--model-family=llama",
        "--base-model-ref=llama-3-8b",
        f"--model-uri={model}",
        f"--eval-uri={tmp_path / 'eval'}",
        "--model-name=llama-sft",
        "--save-format=hf",
    ]


def test_flag_equals_value(outputs: Path, model_dir: Path, tmp_path: Path) -> None:
    assert register.main(base_args(model_dir, tmp_path)) == 0
    record = json.loads((outputs / "model-version.json").read_text())
    assert record == {
        "name": "llama-sft",
        "version": None,
        "run_id": None,
        "source": None,
        "storage_uri": str(model_dir),
    }


def test_flag_space_value(outputs: Path, model_dir: Path, tmp_path: Path) -> None:
    args = [part for arg in base_args(model_dir, tmp_path) for part in arg.split("=", 1)]
    assert register.main(args) == 0
    assert json.loads((outputs / "model-version.json").read_text())["name"] == "llama-sft"


def test_the_record_is_printed(
    outputs: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert register.main(base_args(model_dir, tmp_path)) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(
        (outputs / "model-version.json").read_text()
    )


def test_a_relative_model_uri_becomes_absolute(
    outputs: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [a for a in base_args(model_dir, tmp_path) if not a.startswith("--model-uri")]
    assert register.main([*args, "--model-uri=model"]) == 0
    assert json.loads((outputs / "model-version.json").read_text())["storage_uri"] == str(model_dir)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("--job-type=FINETUNE", "error: Invalid value for '--job-type': "),
        ("--model-family=gpt2", "error: Invalid value for '--model-family': "),
        ("--save-format=gguf", "error: Invalid value for '--save-format': "),
        ("--colour=blue", "error: No such option: --colour"),
    ],
)
def test_bad_flags_are_refused_in_one_line(
    outputs: Path,
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: str,
    message: str,
) -> None:
    name = change.split("=")[0]
    args = [a for a in base_args(model_dir, tmp_path) if not a.startswith(name + "=")]
    assert register.main([*args, change]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message)
    assert not (outputs / "model-version.json").exists()


def test_a_missing_flag_is_refused(
    outputs: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a for a in base_args(model_dir, tmp_path) if not a.startswith("--model-name")]
    assert register.main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: Missing option '--model-name'."
    )


def test_an_encoder_family_cannot_generate(
    outputs: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a for a in base_args(model_dir, tmp_path) if not a.startswith("--model-family")]
    assert register.main([*args, "--model-family=bert"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: model family 'bert' is an encoder: it trains EMBEDDING only, not SFT"
    )


def test_the_console_script_dispatches_to_a_stage(
    outputs: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["register", *base_args(model_dir, tmp_path)]) == 0
    assert cli.main(["bogus"]) == 2
    assert "usage: llmops-trainer {prepare-data, train, evaluate, register, tiny-model}" in (
        capsys.readouterr().err
    )


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert register.main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--job-type", "--model-uri", "--eval-uri", "--model-name", "--save-format"):
        assert flag in out
