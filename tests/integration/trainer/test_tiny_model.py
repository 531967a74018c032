"""The tiny-model command, and the seed's SFT job shape training on it on a CPU in seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from llmops_trainer import prepare_data, tiny_model, train

from integration.trainer.helpers import Job, write_dataset

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("family", ["mistral", "gemma", "bert"])
def test_tiny_model_builds_a_labelled_loadable_directory(
    tmp_path: Path, family: str, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / family
    argv = [f"--family={family}", f"--output={output}", "--max-position-embeddings=256"]
    assert tiny_model.main(argv) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert json.loads(line) == {
        "family": family,
        "path": str(output),
        "max_position_embeddings": 256,
    }
    assert json.loads((output / "llmops-tiny-model.json").read_text()) == {
        "family": family,
        "max_position_embeddings": 256,
        "random_weights": True,
        "purpose": "smoke tests only",
    }
    assert "random" in (output / "README.md").read_text()
    config = json.loads((output / "config.json").read_text())
    assert config["model_type"] == family
    assert config["max_position_embeddings"] == 256

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(output)
    text = "héllo wörld ✓ 世界"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text  # byte-level: any text round-trips
    if family == "bert":
        from sentence_transformers import SentenceTransformer

        embedder = SentenceTransformer(str(output), device="cpu")
        assert embedder.encode(["a", "b"]).shape == (2, 64)
    else:
        from transformers import AutoModelForCausalLM

        assert tokenizer.chat_template
        AutoModelForCausalLM.from_pretrained(output)


def test_the_seed_sft_shape_trains_in_seconds_on_a_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sft_pair, lora, batch 4, 3 epochs over 50 short records, max_seq_len 128."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMOPS_CACHE_DIR", str(tmp_path / "cache"))
    base = tiny_model.build(tiny_model.ModelFamily.MISTRAL, tmp_path / "mistral")
    job = Job(
        root=tmp_path,
        job_id="seed",
        job_type="SFT",
        family="mistral",
        base_model=base,
        dataset=write_dataset(tmp_path / "dataset", "sft_pair", 50),
        num_epochs=3,
    )
    assert prepare_data.main(job.prepare_args()) == 0
    started = time.perf_counter()
    assert train.main(job.train_args()) == 0
    elapsed = time.perf_counter() - started
    assert json.loads((job.model / "llmops-model.json").read_text())["global_step"] == 36
    assert elapsed < 60, f"the seed's SFT shape took {elapsed:.1f} s"
