"""Stage processes: start one so it outlives the worker, tell how it ended, stop its group.

A stage runs under a tiny ``/bin/sh`` wrapper that waits for it and writes its exit code to
the attempt's exit file (atomically: a temporary file renamed). Each stage leads its own
session, and its output goes to a log file, not a pipe, so the stage neither dies with the
worker (a crash, SIGKILL, an in-process restart) nor blocks on a reader that is gone. The exit
file is how any later worker learns the outcome:

* exit file present: the stage ended by itself, with that code (0 = success; 128+N = the
  trainer was killed by signal N, e.g. the kernel's OOM killer);
* no exit file and the process gone: the wrapper itself was killed (the worker stopped the
  stage, the machine rebooted): an *error* of the infrastructure, which Argo's ``OnError``
  retry policy retries.

A process is identified by its pid *and* start time (``/proc/<pid>/stat``), so a pid reused
by another program after a reboot is never mistaken for the stage.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

WRAPPER: Final = '"$@"; code=$?; printf "%s" "$code" > "$0.tmp" && mv "$0.tmp" "$0"; exit "$code"'
"""``sh -c WRAPPER <exit file> <argv...>``: run argv, record its exit code."""


@dataclass(frozen=True)
class Started:
    """A stage process just started."""

    process: subprocess.Popen[bytes]
    pid_start: str | None


_STATE, _PGRP, _START_TIME = 0, 2, 19
"""Positions in :func:`_stat_fields` of the state, process group and start time."""


def _stat_fields(stat: Path) -> list[str] | None:
    """The fields of a ``/proc/<pid>/stat`` after the command name, or None when it cannot be
    read (the process is gone, or there is no /proc). The name may contain spaces and
    parentheses: the fields start after the last ')'."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None without /proc."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return None if fields is None else fields[_START_TIME]


def is_running(pid: int, pid_start: str | None) -> bool:
    """Whether the process ``pid`` started at ``pid_start`` is still alive (not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds the pid
        return False
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    if fields is None:
        return True  # no /proc (macOS): trust kill(0)
    if fields[_STATE] == "Z":
        return False
    return pid_start is None or fields[_START_TIME] == pid_start


@functools.cache
def current_boot() -> str | None:
    """This boot of the machine (Linux's boot id), or None where it cannot be told (read once:
    it cannot change while this process runs)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def our_group_alive(pgid: int, boot: str | None) -> bool:
    """Whether the stage's process group, started in boot ``boot``, still has live members.

    Within one boot the kernel never hands out a pid still used as a group id, so a live group
    ``pgid`` is the stage's (its trainer may outlive a killed wrapper); after a reboot every
    stage process is gone and the number may belong to anyone: never ours.
    """
    if boot is None or boot != current_boot():
        return False
    return group_alive(pgid)


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in the process group ``pgid``: the
    wrapper may be gone while the trainer or torchrun's workers still exit."""
    proc = Path("/proc")
    if not proc.is_dir():  # no /proc (macOS): the kernel's own answer, zombies included
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields is not None and fields[_PGRP] == str(pgid) and fields[_STATE] != "Z":
            return True
    return False


def read_exit_code(path: Path) -> int | None:
    """The code in an exit file, or None when there is none (yet)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def start(
    argv: list[str], *, env: dict[str, str], cwd: Path, log: Path, exit_file: Path
) -> Started:
    """Start ``argv`` in its own session with output appended to ``log``."""
    cwd.mkdir(parents=True, exist_ok=True)
    exit_file.parent.mkdir(parents=True, exist_ok=True)
    exit_file.unlink(missing_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            ["/bin/sh", "-c", WRAPPER, str(exit_file), *argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(process, process_start_time(process.pid))


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the stage's whole process group (the wrapper, the trainer, torchrun's workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def describe_exit(code: int) -> str:
    """``exit code 2`` or ``killed by SIGKILL`` (the shell reports a signal as 128+N)."""
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(code - 128).name}"
    return f"exit code {code}"


def tail(path: Path, *, lines: int = 12, limit: int = 1200) -> str:
    """The last lines of a log, for a failure reason (at most ``limit`` characters)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    joined = "\n".join(kept)
    return joined if len(joined) <= limit else "..." + joined[-(limit - 3) :]
