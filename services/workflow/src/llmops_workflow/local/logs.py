"""Stage output into the worker's own output, line by line, prefixed with the stage's name.

Stages write to log files (see :mod:`.process`); a tail per running stage copies new complete
lines to a sink. Under ``llmops up`` the sink prints ``train-<job>/<stage> | <line>`` (the
stack prefixes the worker's name), so a person watches training in the one terminal; with
``LOG_JSON=true`` each line is a structured ``stage_output`` event instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from llmops_shared.logging import get_logger

StageOutput = Callable[[str, str, str], None]
"""``(pipeline, stage, line)``: where a stage's output lines go."""

_CHUNK: Final = 64 * 1024
_LONGEST: Final = 8 * 1024
"""A line longer than this (a progress bar without newlines) is emitted in pieces."""


def print_output(pipeline: str, stage: str, line: str) -> None:
    """Plain prefixed lines on stdout, for a person reading the stack's terminal."""
    sys.stdout.write(f"{pipeline}/{stage} | {line}\n")
    sys.stdout.flush()


def log_output(pipeline: str, stage: str, line: str) -> None:
    """One structured event per line, for JSON logs."""
    get_logger(__name__).info("stage_output", pipeline=pipeline, stage=stage, line=line)


class LogTail:
    """Follows one log file from ``offset``, emitting complete lines."""

    def __init__(self, path: Path, pipeline: str, stage: str, emit: StageOutput) -> None:
        self.path = path
        self.pipeline = pipeline
        self.stage = stage
        self._emit = emit
        self._offset = path.stat().st_size if path.exists() else 0
        self._partial = ""

    def pump(self) -> bool:
        """Emit what was appended since the last call, up to one chunk (progress bars'
        carriage returns end a line too, so a tqdm bar shows its latest state rather than
        nothing); whether anything was read."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read(_CHUNK)
        except OSError:
            return False
        if not data:
            return False
        self._offset += len(data)
        text = self._partial + data.decode(errors="replace").replace("\r", "\n")
        *lines, self._partial = text.split("\n")
        if len(self._partial) > _LONGEST:
            lines, self._partial = [*lines, self._partial], ""
        for line in lines:
            if line.strip():
                self._emit(self.pipeline, self.stage, line.rstrip())
        return True

    def close(self) -> None:
        """Emit everything left (a final traceback may be longer than a chunk), including a
        last line without a newline."""
        while self.pump():
            pass
        if self._partial.strip():
            self._emit(self.pipeline, self.stage, self._partial.rstrip())
        self._partial = ""
