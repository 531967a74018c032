"""``validate training-jobs`` / ``validate serving-endpoints`` over records the API created and
today's rules reject (both databases).

Records are created through the gateway's API, then made invalid the way it happens in real
life: the catalog changes under them (a smaller ``max_position_embeddings``, a model no longer
Ready) or the stored spec is one older rules accepted (edited in the database here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from llmops_cli.app import with_plugins
from llmops_gateway.db.models import CatalogModel, ServingDeployment, TrainingJob
from llmops_gateway.scripts.cli import app
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC

from integration.gateway.harness import API, Gateway, auth, seed_request, serving_request

pytestmark = pytest.mark.integration

JOBS = f"{API}/training/jobs"
ENDPOINTS = f"{API}/serving/endpoints"

TOO_LONG = "SFT max_seq_len must be <= base_model.max_position_embeddings (4096 > 2048)"
FALCON = "Model family 'falcon' is not supported"
RAG_QA = "Dataset type 'rag_qa' is not compatible with job_type 'SFT'"
NOT_A_NUMBER = "Input should be a valid number, unable to parse string as a number"
SERVE_RAG = "Serve target 'RAG' is not compatible with job_type 'SFT'"
TOKENS = (
    "runtime.max_input_tokens + runtime.max_output_tokens must be <= "
    "model.max_position_embeddings (4096 + 1024 = 5120 > 4096)"
)


def validate(gateway: Gateway, *args: str, cli: Any = app, **env: str) -> Result:
    """The command as an operator runs it: settings from the environment, like the gateway's."""
    environment = {
        "DATABASE_URL": gateway.settings.sqlalchemy_url(),
        "TRAINING_REQUIRES_DATASET_VERSION": "false",  # as the gateway under test was started
        "COLUMNS": "300",  # rich tables: no wrapped messages
        **env,
    }
    return CliRunner().invoke(cli, ["validate", *args], env=environment)


def document(result: Result) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def found(result: Result) -> dict[str, list[tuple[str, str]]]:
    """``--json`` output as {record id: [(field, message)...]} of the records that break rules."""
    return {
        record["id"]: [(".".join(map(str, v["loc"])), v["message"]) for v in record["violations"]]
        for record in document(result)["records"]
        if record["violations"]
    }


def reports_as_json(
    gateway: Gateway, command: str, expected: dict[str, list[tuple[str, str]]]
) -> Result:
    """``validate <command> --json`` over every record: exit 1, and exactly the ``expected``
    violations ({record id: [(field, message)...]})."""
    result = validate(gateway, command, "--json")
    assert result.exit_code == 1, result.output
    assert found(result) == expected
    return result


def reports_in_table(
    gateway: Gateway, command: str, expected: dict[str, list[tuple[str, str]]]
) -> Result:
    """``validate <command>`` over every record: exit 1, and each ``expected`` violation on a
    table row of its own, with the record's id and the field."""
    result = validate(gateway, command)
    assert result.exit_code == 1, result.output
    table_rows = [line for line in result.stdout.splitlines() if "│" in line]
    for record_id, violations in expected.items():
        for field, message in violations:
            [row] = [line for line in table_rows if message in line]
            assert record_id in row
            assert field in row
    return result


def edit_spec(
    gateway: Gateway, table: type[TrainingJob | ServingDeployment], record_id: str, **changes: Any
) -> None:
    """What an older gateway would have stored: the record's spec with ``changes`` (a nested
    dict is merged one level deep)."""
    with gateway.state.sessions.begin() as session:
        record = session.get(table, record_id)
        assert record is not None
        spec = dict(record.spec)
        for key, value in changes.items():
            spec[key] = {**spec[key], **value} if isinstance(value, dict) else value
        record.spec = spec


def edit_model(gateway: Gateway, name: str, **values: Any) -> None:
    """The catalog changed: a corrected max_position_embeddings, an import gone Failed..."""
    with gateway.state.sessions.begin() as session:
        model = session.query(CatalogModel).filter_by(name=name).one()
        for key, value in values.items():
            setattr(model, key, value)


async def submit(gateway: Gateway, **spec_changes: Any) -> str:
    response = await gateway.submit(seed_request(**spec_changes))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def artifact(name: str) -> dict[str, Any]:
    return {"output": {**SEED_TRAIN_JOB_SPEC["output"], "artifact_name": name}}


async def test_training_jobs_report_exactly_what_todays_rules_reject(gateway: Gateway) -> None:
    await gateway.register_base_model()
    await gateway.register_base_model(name="llama-small")
    await gateway.register_base_model(name="llama-broken")
    clean = await submit(gateway, **artifact("clean-v1"))
    too_long = await submit(gateway, base_model_ref="llama-small", **artifact("too-long-v1"))
    falcon = await submit(gateway, **artifact("falcon-v1"))
    rag_qa = await submit(gateway, **artifact("rag-qa-v1"))
    unparsable = await submit(gateway, **artifact("unparsable-v1"))
    not_ready = await submit(gateway, base_model_ref="llama-broken", **artifact("broken-v1"))
    edit_model(gateway, "llama-small", max_position_embeddings=2048)
    edit_model(gateway, "llama-broken", status="Failed", reason="the Hub said 401")
    edit_spec(gateway, TrainingJob, falcon, model_family="falcon")
    edit_spec(gateway, TrainingJob, rag_qa, dataset_ref={"type": "rag_qa"})
    edit_spec(gateway, TrainingJob, unparsable, hyperparams={"lr": "fast"})
    expected = {
        too_long: [("hyperparams.max_seq_len", TOO_LONG)],
        falcon: [("model_family", FALCON)],
        rag_qa: [("dataset_ref.type", RAG_QA)],
        unparsable: [("hyperparams.lr", NOT_A_NUMBER)],
        not_ready: [
            (
                "base_model_ref",
                "Model 'llama-broken' is not ready to use: its import failed (the Hub said 401)",
            )
        ],
    }

    as_json = reports_as_json(gateway, "training-jobs", expected)
    report = document(as_json)
    assert report["checked"] == 6
    assert report["withViolations"] == 5
    assert report["marked"] is False
    records = {record["id"]: record for record in report["records"]}
    assert records[clean] == {
        "id": clean,
        "name": "clean-v1",
        "status": "Pending",
        "violations": [],
        "catalogChecked": True,
    }
    assert records[falcon]["violations"] == [
        {
            "loc": ["model_family"],
            "message": FALCON,
            "rule": "model_family_supported",
            "type": "spec_rule",
        }
    ]
    assert records[falcon]["catalogChecked"] is False  # the spec itself is invalid
    assert records[unparsable]["violations"][0]["type"] == "float_parsing"
    assert "6 training jobs checked, 5 with violations" in as_json.stderr

    table = reports_in_table(gateway, "training-jobs", expected)
    assert clean not in table.stdout  # only the records with violations are listed...
    assert "6 training jobs checked, 5 with violations" in table.stdout
    everything = validate(gateway, "training-jobs", "--all")
    assert clean in everything.stdout  # ... unless asked for all of them

    one = validate(gateway, "training-jobs", "--job-id", too_long, "--json")
    assert one.exit_code == 1, one.output
    assert found(one) == {too_long: expected[too_long]}
    assert document(one)["checked"] == 1

    fine = validate(gateway, "training-jobs", "--job-id", clean)
    assert fine.exit_code == 0, fine.output
    assert "1 training job checked, 0 with violations" in fine.stdout

    # the dataset-version rule follows the setting, as at submission
    strict = validate(
        gateway,
        "training-jobs",
        "--job-id",
        clean,
        "--json",
        TRAINING_REQUIRES_DATASET_VERSION="true",
    )
    assert strict.exit_code == 1, strict.output
    assert found(strict) == {
        clean: [
            (
                "dataset_ref.version",
                "Dataset 'enterprise-instruction' version 'v1' was not found in the catalog",
            )
        ]
    }

    unknown = validate(gateway, "training-jobs", "--job-id", "no-such-job")
    assert unknown.exit_code == 2
    assert "training job no-such-job not found" in unknown.stderr
    assert unknown.stdout == ""


async def test_mark_stores_the_result_and_the_api_shows_it(gateway: Gateway) -> None:
    await gateway.register_base_model()
    clean = await submit(gateway, **artifact("clean-v1"))
    falcon = await submit(gateway, **artifact("falcon-v1"))
    edit_spec(gateway, TrainingJob, falcon, model_family="falcon")
    before = (await gateway.client.get(f"{JOBS}/{falcon}")).json()
    assert before["violations"] is None
    assert before["validatedAt"] is None

    first = validate(gateway, "training-jobs", "--mark", "--json")
    assert first.exit_code == 1, first.output
    assert document(first)["marked"] is True
    marked = (await gateway.client.get(f"{JOBS}/{falcon}")).json()
    assert marked["violations"] == [
        {
            "loc": ["model_family"],
            "message": FALCON,
            "rule": "model_family_supported",
            "type": "spec_rule",
        }
    ]
    assert marked["validatedAt"] == document(first)["validatedAt"].replace("+00:00", "Z")
    assert marked["updatedAt"] == before["updatedAt"]  # re-validation is not a change
    clean_job = (await gateway.client.get(f"{JOBS}/{clean}")).json()
    assert clean_job["violations"] == []
    assert clean_job["validatedAt"] == marked["validatedAt"]

    second = validate(gateway, "training-jobs", "--mark")
    assert second.exit_code == 1, second.output
    remarked = (await gateway.client.get(f"{JOBS}/{falcon}")).json()
    assert remarked["violations"] == marked["violations"]  # the same result, rewritten
    assert _when(remarked["validatedAt"]) >= _when(marked["validatedAt"])

    edit_spec(gateway, TrainingJob, falcon, model_family="llama")  # someone fixed the record
    fixed = validate(gateway, "training-jobs", "--mark", "--job-id", falcon)
    assert fixed.exit_code == 0, fixed.output
    assert (await gateway.client.get(f"{JOBS}/{falcon}")).json()["violations"] == []


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_serving_endpoints_report_exactly_what_todays_rules_reject(
    gateway: Gateway,
) -> None:
    model = await gateway.register_trained_model()
    small = await gateway.register_trained_model(name="llama-sft-small")
    broken = await gateway.register_trained_model(name="llama-sft-broken")
    await gateway.register_base_model()
    job = await submit(gateway, **artifact("other-artifact"))  # produces what /produced serves
    await gateway.report_trained(job)  # an endpoint may serve it once trained and registered

    async def create(route: str, model_id: str, **spec: Any) -> str:
        body = serving_request(model_id, route=route)
        body["deploymentSpec"].update(spec)
        response = await gateway.create_endpoint(body)
        assert response.status_code == 202, response.text
        endpoint_id: str = response.json()["id"]
        return endpoint_id

    clean = await create("/clean", model["id"])
    tokens = await create("/tokens", small["id"])
    serve_rag = await create("/serve-rag", model["id"])
    not_ready = await create("/not-ready", broken["id"])
    produced = await create("/produced", model["id"], model_ref="other-artifact")
    deleting = await create("/deleting", model["id"])
    edit_model(gateway, "llama-sft-small", max_position_embeddings=4096)
    edit_model(gateway, "llama-sft-broken", status="Pending")
    edit_spec(gateway, ServingDeployment, serve_rag, serve_target="RAG")
    edit_spec(gateway, TrainingJob, job, model_family="mistral")  # the producing job's family
    assert (await gateway.client.delete(f"{ENDPOINTS}/{deleting}", headers=auth())).is_success
    edit_spec(gateway, ServingDeployment, deleting, model_family="falcon")
    expected = {
        tokens: [("runtime.max_input_tokens", TOKENS)],
        serve_rag: [("serve_target", SERVE_RAG)],
        not_ready: [
            ("modelId", f"Model '{broken['id']}' is not ready to use: its import is Pending")
        ],
        produced: [
            (
                "model_family",
                "Deployment model_family must match the training job's ('llama' != 'mistral')",
            )
        ],
    }

    as_json = reports_as_json(gateway, "serving-endpoints", expected)
    report = document(as_json)
    assert report["checked"] == 5
    assert report["skipped"] == [
        {"id": deleting, "name": "deleting", "status": "Deleting", "reason": "being deleted"}
    ]
    records = {record["id"]: record for record in report["records"]}
    assert records[clean] == {
        "id": clean,
        "name": "clean",
        "status": "Pending",
        "environment": "dev",
        "route": "/clean",
        "violations": [],
        "catalogChecked": True,
    }
    assert "5 serving endpoints checked, 4 with violations; 1 skipped (Deleting)" in as_json.stderr

    table = reports_in_table(gateway, "serving-endpoints", expected)
    assert clean not in table.stdout
    assert deleting not in table.stdout

    named = validate(gateway, "serving-endpoints", "--endpoint-id", deleting, "--json")
    assert named.exit_code == 1, named.output  # named, it is checked even while deleting
    assert found(named) == {deleting: [("model_family", FALCON)]}

    unknown = validate(gateway, "serving-endpoints", "--endpoint-id", "no-such-endpoint")
    assert unknown.exit_code == 2
    assert "serving endpoint no-such-endpoint not found" in unknown.stderr

    marked = validate(gateway, "serving-endpoints", "--mark")
    assert marked.exit_code == 1, marked.output
    shown = (await gateway.client.get(f"{ENDPOINTS}/{serve_rag}")).json()
    assert shown["violations"] == [
        {
            "loc": ["serve_target"],
            "message": SERVE_RAG,
            "rule": "serve_target_compatible",
            "type": "spec_rule",
        }
    ]
    assert shown["validatedAt"] is not None
    assert (await gateway.client.get(f"{ENDPOINTS}/{clean}")).json()["violations"] == []
    skipped = (await gateway.client.get(f"{ENDPOINTS}/{deleting}")).json()
    assert skipped["validatedAt"] is None  # skipped records are not marked


async def test_a_clean_database_exits_0(gateway: Gateway) -> None:
    entities = {"training-jobs": "training job", "serving-endpoints": "serving endpoint"}
    for command, entity in entities.items():
        empty = validate(gateway, command)
        assert empty.exit_code == 0, empty.output
        assert f"0 {entity}s checked, 0 with violations" in empty.stdout

    model = await gateway.register_trained_model()
    await gateway.register_base_model()
    response = await gateway.create_endpoint(serving_request(model["id"]))
    assert response.status_code == 202, response.text
    # A job producing the served name, submitted after the endpoint, does not make the stored
    # endpoint wrong: model_ref_registered is a rule of creation, not of revalidation.
    await submit(gateway)
    # through the `llmops` command, where the gateway's scripts plug in
    for command, entity in entities.items():
        result = validate(gateway, command, "--mark", cli=with_plugins())
        assert result.exit_code == 0, result.output
        assert f"1 {entity} checked, 0 with violations; marked 1 record" in result.stdout


def test_python_m_prints_one_json_document(tmp_path: Path) -> None:
    """``python -m llmops_gateway.scripts``: a fresh SQLite database is migrated, checked, and
    stdout holds the JSON document alone (the summary goes to stderr)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db"}
    result = subprocess.run(
        [sys.executable, "-m", "llmops_gateway.scripts", "validate", "training-jobs", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["checked"] == 0
    assert "0 training jobs checked, 0 with violations" in result.stderr
