"""The github backend: the real PyGithub against the GitHub test double, through the handler."""

from __future__ import annotations

import asyncio

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from llmops_github_sync.adapters.github import GithubRepository, app_auth
from llmops_github_sync.handlers import SKIPPED_NO_RUN, handle_models_event
from llmops_github_sync.ports import DependencyUnavailableError
from llmops_shared.events import Phase

from integration.github_sync.helpers import (
    GOLDEN,
    OWNER,
    REPO,
    Sleeps,
    changed,
    github_repo,
    ports,
    received,
    registered,
    status_of,
)
from support.github_server import GitHubServer
from support.streams import details_of

pytestmark = pytest.mark.integration
RUN = "abc123def456"
PATH = f"{RUN}.yaml"


async def sync(gh_ports, envelope):  # type: ignore[no-untyped-def]
    [status] = await handle_models_event(received(envelope), gh_ports)
    return status_of(status)


async def test_new_run_gets_the_seeds_structure_in_one_commit(gh: GitHubServer) -> None:
    status = await sync(ports(github_repo(gh)), registered())
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert status.entity_id == "Qwen/Qwen3-0.6B/1"
    assert gh.file(OWNER, REPO, PATH) == GOLDEN.read_bytes()
    commits = gh.commits(OWNER, REPO)
    assert len(commits) == 2
    assert details_of(status) == {
        "path": PATH,
        "action": "created",
        "commit": commits[0]["sha"],
        "backend": "github",
        "pull_request": None,
        "max_model_len": 4096,
        "capped": False,
    }
    assert commits[0]["message"].startswith(f"github-sync: add {PATH} for Qwen/Qwen3-0.6B/1")
    # no author configured: GitHub makes the token's user the author (the double: "Octo")
    assert commits[0]["author"]["name"] == "Octo"


async def test_redelivery_and_unchanged_make_no_commit(gh: GitHubServer) -> None:
    p = ports(github_repo(gh))
    event = registered()
    await sync(p, event)
    again = await sync(p, event)
    also = await sync(p, changed("Qwen/Qwen3-0.6B", "1", RUN))  # same facts, other event
    assert details_of(again)["action"] == details_of(also)["action"] == "unchanged"
    assert details_of(again)["commit"] is None
    assert len(gh.commits(OWNER, REPO)) == 2
    assert not [p for m, p in gh.requests if m == "PUT"][1:]


async def test_existing_file_keeps_a_custom_edit_and_only_global_changes(gh: GitHubServer) -> None:
    custom = (
        GOLDEN.read_bytes().replace(
            b"gpuMemoryUtilization: 0.9", b"gpuMemoryUtilization: 0.75  # tuned by hand"
        )
        + b"\n# added by a person\nresources:\n  limits: {nvidia.com/gpu: 2}\n"
    )
    gh.push(OWNER, REPO, {PATH: custom})
    status = await sync(ports(github_repo(gh)), registered(version="2"))
    assert details_of(status)["action"] == "updated"
    after = gh.file(OWNER, REPO, PATH)
    assert after is not None
    assert after == custom.replace(b'modelVersion: "1"', b'modelVersion: "2"')
    assert b"# tuned by hand" in after
    assert b"limits: {nvidia.com/gpu: 2}" in after
    assert gh.commits(OWNER, REPO)[0]["message"].splitlines()[0] == (
        f"github-sync: update global of {PATH} for Qwen/Qwen3-0.6B/2"
    )


async def test_corrupt_file_is_regenerated_and_the_old_one_stays_in_history(
    gh: GitHubServer,
) -> None:
    broken = b"global: [unclosed\n  ::: {"
    old_commit = gh.push(OWNER, REPO, {PATH: broken})
    status = await sync(ports(github_repo(gh)), registered())
    assert details_of(status)["action"] == "regenerated"
    assert gh.file(OWNER, REPO, PATH) == GOLDEN.read_bytes()
    assert gh.file(OWNER, REPO, PATH, ref=old_commit) == broken
    assert "not a YAML mapping" in gh.commits(OWNER, REPO)[0]["message"]


async def test_max_model_len_is_capped_by_the_models_max_position_embeddings(
    gh: GitHubServer,
) -> None:
    status = await sync(
        ports(github_repo(gh)), registered(tags={"llmops.max_position_embeddings": "2048"})
    )
    content = yaml.safe_load(gh.file(OWNER, REPO, PATH) or b"")
    assert content["vllm"]["vllm"]["maxModelLen"] == 2048
    assert details_of(status)["max_model_len"] == 2048
    assert details_of(status)["capped"] is True
    assert "capped to 2048" in (status.reason or "")
    assert "maxModelLen capped to 2048" in gh.commits(OWNER, REPO)[0]["message"]


async def test_a_409_re_reads_and_retries(gh: GitHubServer) -> None:
    gh.conflict_next_put(2)
    status = await sync(ports(github_repo(gh)), registered())
    assert details_of(status)["action"] == "created"
    assert gh.paths("PUT").count(f"/repos/{OWNER}/{REPO}/contents/{PATH}") == 3
    assert len(gh.commits(OWNER, REPO)) == 2


async def test_rate_limit_waits_retry_after_then_succeeds(gh: GitHubServer) -> None:
    sleeps = Sleeps()
    gh.rate_limit_next(2, retry_after_s=2, status=403)
    status = await sync(ports(github_repo(gh, sleep=sleeps)), registered())
    assert status.phase is Phase.SUCCEEDED
    assert sleeps.calls == [2.0, 2.0]
    gh.rate_limit_next(1, retry_after_s=1, status=429)
    status = await sync(ports(github_repo(gh, sleep=sleeps)), registered(version="2"))
    assert details_of(status)["action"] == "updated"
    assert sleeps.calls[-1] == 1.0


async def test_rate_limit_beyond_the_bound_is_a_dependency_outage(gh: GitHubServer) -> None:
    sleeps = Sleeps()
    gh.rate_limit_next(1, retry_after_s=3600)
    with pytest.raises(DependencyUnavailableError, match="rate limit"):
        await sync(ports(github_repo(gh, sleep=sleeps, max_rate_limit_wait_s=10)), registered())
    assert sleeps.calls == []
    assert gh.file(OWNER, REPO, PATH) is None


async def test_bad_credentials_are_a_dependency_outage_not_a_dead_letter(
    gh: GitHubServer,
) -> None:
    from pydantic import SecretStr

    from llmops_github_sync.adapters.github import token_auth

    repo = github_repo(gh, auth=token_auth(SecretStr("ghp_wrong")))
    with pytest.raises(DependencyUnavailableError, match="401"):
        await sync(ports(repo), registered())


async def test_concurrent_workers_on_one_run_make_exactly_one_commit(gh: GitHubServer) -> None:
    workers = [ports(github_repo(gh)) for _ in range(3)]
    event = registered()
    statuses = await asyncio.gather(*(sync(w, event) for w in workers))
    actions = sorted(details_of(s)["action"] for s in statuses)
    assert actions == ["created", "unchanged", "unchanged"]
    assert len(gh.commits(OWNER, REPO)) == 2


async def test_pull_request_mode_opens_one_pr_and_reuses_it(gh: GitHubServer) -> None:
    p = ports(github_repo(gh, mode="pull_request"))
    first = await sync(p, registered())
    branch = f"llmops/values-{RUN}"
    assert details_of(first)["action"] == "created"
    assert gh.file(OWNER, REPO, PATH) is None  # the default branch is untouched
    assert gh.file(OWNER, REPO, PATH, ref=branch) == GOLDEN.read_bytes()
    [pull] = gh.pulls(OWNER, REPO)
    assert (pull["head"], pull["base"], pull["state"]) == (branch, "main", "open")
    assert details_of(first)["pull_request"] == f"{gh.url}/{OWNER}/{REPO}/pull/1"
    again = await sync(p, registered())  # redelivered
    assert details_of(again)["action"] == "unchanged"
    assert details_of(again)["pull_request"] == details_of(first)["pull_request"]
    newer = await sync(p, registered(version="2"))  # a new version of the same run
    assert details_of(newer)["action"] == "updated"
    assert len(gh.pulls(OWNER, REPO)) == 1
    assert len(gh.commits(OWNER, REPO, branch)) == 3


async def test_github_app_installation_auth(gh: GitHubServer) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    gh.register_app("4242", public, installation_id=77)
    repo = github_repo(gh, auth=app_auth("4242", private, 77), auth_kind="app")
    status = await sync(ports(repo), registered())
    assert details_of(status)["action"] == "created"
    assert "/app/installations/77/access_tokens" in gh.paths("POST")


async def test_version_without_run_id_is_skipped(gh: GitHubServer) -> None:
    status = await sync(ports(github_repo(gh)), registered(run_id=None))
    assert status.phase is Phase.SUCCEEDED
    assert status.reason == SKIPPED_NO_RUN
    assert details_of(status)["action"] == "skipped"
    assert len(gh.commits(OWNER, REPO)) == 1


async def test_values_path_that_is_a_file_fails_clearly(gh: GitHubServer) -> None:
    gh.push(OWNER, REPO, {"values": b"not a directory"})
    repo: GithubRepository = github_repo(gh, values_path="values")
    status = await sync(ports(repo, values_path="values"), registered())
    assert status.phase is Phase.FAILED
    assert "is a file" in (status.reason or "")


async def test_values_path_directory_and_a_broken_template(gh: GitHubServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = github_repo(gh, values_path="charts/values")
    status = await sync(ports(repo, values_path="charts/values"), registered())
    assert details_of(status)["path"] == f"charts/values/{PATH}"
    assert gh.file(OWNER, REPO, f"charts/values/{PATH}") == GOLDEN.read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text("vllm: [unclosed\n")
    status = await sync(ports(repo, template_path=bad), registered(run_id="other"))
    assert status.phase is Phase.FAILED
    assert "does not parse" in (status.reason or "")


# ---------------------------------------------------------------------------- review findings


async def test_a_renamed_default_branch_is_followed(gh: GitHubServer) -> None:
    repo = github_repo(gh)  # no branch configured: the repository's default
    p = ports(repo)
    first = await sync(p, registered())
    assert details_of(first)["action"] == "created"
    gh.rename_branch(OWNER, REPO, "main", "trunk")
    second = await sync(p, registered(version="2"))
    assert second.phase is Phase.SUCCEEDED, second.reason
    assert details_of(second)["action"] == "updated"
    assert b'modelVersion: "2"' in (gh.file(OWNER, REPO, PATH, ref="trunk") or b"")
    gh.rename_branch(OWNER, REPO, "trunk", "release")
    await repo.ping()
    assert repo.describe()["branch"] == "release"


async def test_an_event_whose_run_is_gone_from_mlflow_fails_without_stalling(
    gh: GitHubServer,
) -> None:
    from llmops_github_sync.ports import RunNotFound

    class GoneRegistry:
        async def experiment_of(self, run_id: str) -> str:
            raise RunNotFound(f"MLflow cannot give run {run_id} (RESOURCE_DOES_NOT_EXIST)")

    p = ports(github_repo(gh), registry=GoneRegistry())
    status = await sync(p, registered(experiment_id=None))
    assert status.phase is Phase.FAILED
    assert "RESOURCE_DOES_NOT_EXIST" in (status.reason or "")
    assert gh.file(OWNER, REPO, PATH) is None
