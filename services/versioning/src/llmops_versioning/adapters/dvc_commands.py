"""git and DVC as subprocesses of the DVC backend: their environment, timeout and error lines.

Split out of :mod:`llmops_versioning.adapters.dvc`: every command the backend runs goes through
:class:`Commands`, with the repository as working directory (DVC's global state — cwd-relative
paths, logging, its event loop — stays out of the worker) and a timeout.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from llmops_versioning.manifest import one_line
from llmops_versioning.ports import VersioningFailed


class CommandFailed(VersioningFailed):
    """A git or dvc command exited non-zero or timed out; the message says which and why."""


def error_line(output: str) -> str:
    """The useful part of DVC/git output: its ERROR lines, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR")]
    if errors:
        return one_line("; ".join(errors), 600)
    noise = ("Having any troubles?", "Hit us up", "https://dvc.org/support")
    useful = [line for line in lines if not line.startswith(noise)]
    return one_line(useful[-1], 600) if useful else "no output"


def command_env(*, author_name: str, author_email: str, s3_retries: int) -> dict[str, str]:
    """The environment of every git and dvc command: this process's, plus identity and limits."""
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": author_name,
        "GIT_AUTHOR_EMAIL": author_email,
        "GIT_COMMITTER_NAME": author_name,
        "GIT_COMMITTER_EMAIL": author_email,
        "GIT_TERMINAL_PROMPT": "0",
    }
    # botocore's attempts per S3 request in DVC (DVC has no option for it): an unreachable
    # endpoint fails in seconds, not minutes; an operator's own AWS_MAX_ATTEMPTS wins
    env.setdefault("AWS_MAX_ATTEMPTS", str(max(1, s3_retries)))
    env.setdefault("AWS_RETRY_MODE", "standard")
    return env


class Commands:
    """Runs ``git`` and ``python -m dvc`` (of ``python``) with one environment and timeout."""

    def __init__(self, *, env: dict[str, str], timeout_s: float, python: str) -> None:
        self.env = env
        self.timeout_s = timeout_s
        self.python = python

    def git(self, root: Path, *args: str, check: bool = True) -> str:
        result = self.run(
            [
                "git",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "tag.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
                *args,
            ],
            root,
            what=f"git {args[0]}",
            check=check,
        )
        return result.stdout.strip()

    def commit(self, root: Path, message: str) -> None:
        """Commit what is staged (an empty commit if nothing is), hooks skipped."""
        self.git(root, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message)

    def dvc(self, root: Path, *args: str) -> None:
        self.run([self.python, "-m", "dvc", *args], root, what=f"dvc {args[0]}")

    def run(
        self, argv: list[str], cwd: Path, *, what: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                argv,
                cwd=cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except FileNotFoundError as exc:
            raise CommandFailed(f"{what}: {argv[0]} is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(f"{what} timed out after {self.timeout_s:g}s") from exc
        if check and result.returncode != 0:
            raise CommandFailed(f"{what} failed: {error_line(result.stderr + result.stdout)}")
        return result
