"""prepare_data with a pinned dataset version reads the recorded content, whatever sits at
the dataset's storage_uri now, and records the pin as the run's dataset input."""

from __future__ import annotations

import json
import uuid

import pytest
from mlflow.tracking import MlflowClient

from llmops_trainer import prepare_data
from llmops_versioning.adapters.builtin import BuiltinBackend
from llmops_versioning.ports import VersionRequest

from integration.trainer.conftest import NewJob

pytestmark = pytest.mark.integration


def test_a_pinned_version_is_read_by_content_address(
    new_job: NewJob, mlflow_client: MlflowClient
) -> None:
    job = new_job("SFT")
    store = job.root / "builtin-store"
    dataset_id = f"ds-{uuid.uuid4().hex[:8]}"
    facts = BuiltinBackend(store, local_data_roots=[job.root]).create_version_sync(
        VersionRequest(dataset_id, uuid.uuid4().hex, "v1", "sft_pair", str(job.dataset)),
        lambda _: None,
    )
    # the dataset's storage_uri changes after the version was recorded
    (job.dataset / "data" / "train.jsonl").write_text('{"prompt": "new", "response": "data"}\n')

    pin = [
        "--dataset-store=builtin",
        f"--dataset-remote={store}",
        f"--dataset-digest={facts.digest}",
        f"--dataset-id={dataset_id}",
    ]
    assert prepare_data.main(job.prepare_args(*pin)) == 0
    prepared = json.loads((job.data / "prepared.json").read_text())
    assert prepared["records"]["total"] == 40  # the recorded version, not today's 6 records
    assert prepared["dataset"]["pinned"] is True
    assert prepared["dataset"]["digest"] == facts.digest

    (dataset_input,) = mlflow_client.get_run(job.run_id).inputs.dataset_inputs  # type: ignore[arg-type]
    assert dataset_input.dataset.digest == facts.digest
    assert dataset_input.dataset.source_type == "builtin"
    assert json.loads(dataset_input.dataset.source) == {
        "manifest": f"{store}/versions/{dataset_id}/v1.json",
        "remote": str(store),
        "store": "builtin",
    }
    tags = {t.key: t.value for t in dataset_input.tags}
    assert tags["llmops.dataset_version"] == "v1"
    assert tags["llmops.dataset_pinned"] == "True"


def test_pin_flags_come_together(new_job: NewJob, capsys: pytest.CaptureFixture[str]) -> None:
    job = new_job("SFT", mlflow=False)
    assert prepare_data.main(job.prepare_args("--dataset-store=dvc")) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: a pinned dataset needs --dataset-remote, --dataset-digest too"
    )
