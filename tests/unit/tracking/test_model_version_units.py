"""Pure parts of the model-version event source: signatures, settings, payloads, stack wiring."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from llmops_cli.stack import Stack, StackOptions, _private_value, new_fernet_key
from llmops_shared.events import ModelVersionRegistered, model_version_event_id
from llmops_tracking.config import TrackingSettings
from llmops_tracking.model_versions import (
    ModelVersionRecord,
    changed_event,
    changed_event_id,
    registered_event,
)
from llmops_tracking.poller import PollerStatus
from llmops_tracking.webhook_signing import sign, signature_matches

pytestmark = pytest.mark.unit

BODY = b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": "1"}}'
RECORD = ModelVersionRecord(
    name="m",
    version="3",
    source="mlflow-artifacts:/1/abc/artifacts/model",
    creation_timestamp=1_700_000_000_123,
    run_id="abc",
    experiment_id="1",
    aliases=("champion",),
    tags={"k": "v"},
)


def test_our_signature_is_mlflows() -> None:
    ours = sign("s3cret", "d-1", "1700000000", BODY)
    assert ours == _generate_hmac_signature("s3cret", "d-1", "1700000000", BODY.decode())


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (sign("s3cret", "d-1", "1", BODY), True),
        (f"v1,AAAA {sign('s3cret', 'd-1', '1', BODY)}", True),  # one of several
        (sign("other", "d-1", "1", BODY), False),
        (sign("s3cret", "d-2", "1", BODY), False),
        (sign("s3cret", "d-1", "2", BODY), False),
        (sign("s3cret", "d-1", "1", BODY + b" "), False),
        ("v1,not base64!", False),
        ("v2," + sign("s3cret", "d-1", "1", BODY).split(",", 1)[1], False),
        ("", False),
    ],
)
def test_signature_matches(header: str, ok: bool) -> None:
    assert signature_matches("s3cret", "d-1", "1", BODY, header) is ok


def settings(**values: object) -> TrackingSettings:
    return TrackingSettings(_env_file=None, **values)  # type: ignore[arg-type]


def test_model_version_settings_defaults() -> None:
    s = settings()
    assert s.mlflow_webhook_secret is None
    assert s.mlflow_webhook_url is None
    assert s.mlflow_webhook_name == "llmops-model-versions"
    assert s.mlflow_webhook_tolerance_s == 300
    assert s.polling_interval == 60
    assert s.model_versions_backfill is True
    assert s.model_versions_lookback_s == 300


def test_the_webhook_secret_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_WEBHOOK_SECRET", "hunter2")
    monkeypatch.setenv("MLFLOW_WEBHOOK_URL", "http://tracking:8081/mlflow/webhook")
    monkeypatch.setenv("POLLING_INTERVAL", "5")
    s = TrackingSettings(_env_file=None)
    assert s.mlflow_webhook_secret is not None
    assert s.mlflow_webhook_secret.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s)
    assert "hunter2" not in s.model_dump_json()
    assert s.polling_interval == 5


def test_empty_webhook_values_mean_unset() -> None:
    s = settings(mlflow_webhook_secret="  ", mlflow_webhook_url="")
    assert (s.mlflow_webhook_secret, s.mlflow_webhook_url) == (None, None)


@pytest.mark.parametrize(
    "values", [{"mlflow_webhook_url": "tracking:8081"}, {"polling_interval": 0}]
)
def test_invalid_model_version_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"MLFLOW_WEBHOOK_URL|greater than 0"):
        settings(**values)


def test_registered_event_carries_the_version_and_a_deterministic_id() -> None:
    envelope = registered_event(RECORD, correlation_id="delivery-1")
    assert envelope.id == model_version_event_id("m", "3", 1_700_000_000_123)
    assert (envelope.source, envelope.subject, envelope.correlationid) == (
        "tracking",
        "m/3",
        "delivery-1",
    )
    payload = ModelVersionRegistered.model_validate(envelope.data)
    assert payload.created_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert (payload.run_id, payload.experiment_id, payload.aliases) == ("abc", "1", ["champion"])


def test_changed_event_ids_depend_on_the_change_and_the_delivery() -> None:
    alias = changed_event(RECORD, "alias_created", "champion", None, delivery_id="d-1")
    tag = changed_event(RECORD, "tag_set", "k", "v", delivery_id="d-2")
    assert alias.id == changed_event_id(RECORD, "alias_created", "champion", "d-1")
    assert tag.id == model_version_event_id("m", "3", 1_700_000_000_123, "tag_set:k:d-2")
    assert alias.correlationid == "d-1"
    assert len({alias.id, tag.id, registered_event(RECORD, correlation_id=None).id}) == 3
    # MLflow's retry of a delivery keeps the id; the same change in a new delivery does not
    # (an alias moved away and back, a tag set A -> B -> A)
    retried = changed_event(RECORD, "alias_created", "champion", None, delivery_id="d-1")
    again = changed_event(RECORD, "alias_created", "champion", None, delivery_id="d-3")
    assert retried.id == alias.id
    assert again.id != alias.id
    assert alias.data["change"] == "alias_created"
    assert alias.data["value"] is None


def test_a_version_whose_source_is_not_a_uri_cannot_be_published() -> None:
    bad = ModelVersionRecord(name="m", version="1", source="", creation_timestamp=1)
    with pytest.raises(ValueError, match="source"):
        registered_event(bad, correlation_id=None)


def test_poller_status_as_dict() -> None:
    status = PollerStatus(interval_s=60, watermark=1_700_000_000_000, passes=2)
    shown = status.as_dict()
    assert shown["watermark"] == "2023-11-14T22:13:20+00:00"
    assert shown["last_run"] == {
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
        "scanned": 0,
        "published": 0,
        "skipped": 0,
        "error": None,
    }
    assert (shown["skipped_total"], shown["last_skipped"]) == (0, [])


def test_stack_secrets_are_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "webhook-secret"
    first = _private_value(path, lambda: "one")
    again = _private_value(path, lambda: "two")
    assert (first, again) == ("one", "one")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(new_fernet_key()) == 44


def test_the_stack_gives_tracking_its_webhook_secret_and_url(tmp_path: Path) -> None:
    stack = Stack(StackOptions(data_dir=tmp_path, environ={}))
    stack._mlflow_local = True
    env = {"HEALTH_PORT": "18081"}
    stack._tracking_webhook_env(tmp_path, env)
    assert env["MLFLOW_WEBHOOK_URL"] == "http://127.0.0.1:18081/mlflow/webhook"
    assert env["MLFLOW_WEBHOOK_SECRET"] == (tmp_path / "webhook-secret").read_text().strip()

    remote = Stack(StackOptions(data_dir=tmp_path, environ={}))  # MLflow not ours: no URL
    env = {"HEALTH_PORT": "18081", "MLFLOW_WEBHOOK_SECRET": "given"}
    remote._tracking_webhook_env(tmp_path, env)
    assert env == {"HEALTH_PORT": "18081", "MLFLOW_WEBHOOK_SECRET": "given"}


def test_a_model_registered_again_gets_new_ids() -> None:
    """Delete a model and register it again: MLflow restarts at version 1; the new version 1
    is another version (another creation time), so another event id and published member."""
    again = ModelVersionRecord(
        name="m", version="3", source=RECORD.source, creation_timestamp=1_800_000_000_000
    )
    old, new = (registered_event(r, correlation_id=None) for r in (RECORD, again))
    assert old.id != new.id
    assert RECORD.member != again.member
    assert RECORD.member == "m/3@1700000000123"


@pytest.mark.parametrize("run_id", ["../../etc/passwd", "a/b", ".hidden", "-x", "x" * 65, ""])
def test_a_version_whose_run_id_is_not_a_run_id_cannot_be_published(run_id: str) -> None:
    bad = ModelVersionRecord(
        name="m", version="1", source=RECORD.source, creation_timestamp=1, run_id=run_id or " "
    )
    with pytest.raises(ValueError, match="run_id"):
        registered_event(bad, correlation_id=None)


def test_tag_values_up_to_mlflows_limit_are_published() -> None:
    from mlflow.utils.validation import MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH

    from llmops_shared.events.payloads.models import TAG_VALUE_MAX_LENGTH

    assert TAG_VALUE_MAX_LENGTH == MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
    value = "x" * TAG_VALUE_MAX_LENGTH
    event = changed_event(RECORD, "tag_set", "k", value, delivery_id="d-1")
    assert event.data["value"] == value
    with pytest.raises(ValueError, match="value"):
        changed_event(RECORD, "tag_set", "k", value + "x", delivery_id="d-1")


@pytest.mark.parametrize(
    ("text", "uri", "expected"),
    [
        (
            "API request to http://user:s3cret@mlflow:5000/api/2.0/mlflow/runs/get failed",
            "http://user:s3cret@mlflow:5000",
            "API request to http://user:***@mlflow:5000/api/2.0/mlflow/runs/get failed",
        ),
        (  # a password with '/' and '@' in it: the URI itself is replaced first
            "to https://u:p/a@ss@host/x failed",
            "https://u:p/a@ss@host",
            "to https://u:***@host/x failed",
        ),
        (  # another URL in the text (a redirect, a proxy)
            "via http://proxy-user:hunter2@proxy:3128 refused",
            "http://mlflow:5000",
            "via http://proxy-user:***@proxy:3128 refused",
        ),
        ("no URL at all", None, "no URL at all"),
    ],
)
def test_mlflow_messages_lose_their_credentials(text: str, uri: str | None, expected: str) -> None:
    from llmops_tracking.adapters.mlflow_errors import scrub

    assert scrub(text, uri) == expected
