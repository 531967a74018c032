"""deploy/redis/acl.py without a server: the committed reference matches it, passwords are only
ever written hashed, and names are safe inside Redis glob patterns."""

from __future__ import annotations

import hashlib
import stat
import types
from pathlib import Path

import pytest

from deploy.helpers import DEPLOY, SERVICES

pytestmark = pytest.mark.unit


def test_the_committed_reference_is_what_the_generator_writes(acl: types.ModuleType) -> None:
    reference = (DEPLOY / "redis" / "users.acl.example").read_text()
    assert reference == acl.render(), "run: python deploy/redis/acl.py --example --out ..."
    assert all(line.startswith("user ") for line in reference.splitlines())  # no comments
    assert " off " in reference
    assert "#" not in reference


def test_one_user_per_service_and_an_operator(acl: types.ModuleType) -> None:
    names = [u.name for u in acl.users()]
    assert sorted(names) == sorted([*SERVICES, "operator"])
    assert names[-1] == "operator"
    assert set(acl.CONSUMES) == set(SERVICES)
    assert acl.password_variable("github-sync") == "REDIS_PASSWORD_GITHUB_SYNC"


def test_passwords_are_written_hashed(
    acl: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for user in acl.users():
        monkeypatch.setenv(acl.password_variable(user.name), f"pw-{user.name}")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "gateway").write_text("from-a-file\n")
    out = tmp_path / "users.acl"
    assert acl.main(["--out", str(out), "--password-dir", str(tmp_path / "secrets")]) == 0
    text = out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "pw-" not in text
    assert "from-a-file" not in text
    assert f"#{hashlib.sha256(b'from-a-file').hexdigest()}" in text  # the file wins
    assert f"#{hashlib.sha256(b'pw-tracking').hexdigest()}" in text
    monkeypatch.delenv("REDIS_PASSWORD_OPERATOR")
    with pytest.raises(SystemExit, match="REDIS_PASSWORD_OPERATOR"):
        acl.main(["--out", str(out)])


def test_a_namespace_is_a_literal_prefix(acl: types.ModuleType) -> None:
    text = acl.render("team[a]*:", "a-")
    assert "~team\\[a\\]\\*:llmops.status" in text
    assert "user a-versioning " in text
    assert "~llmops.status " not in text  # no key outside the namespace
