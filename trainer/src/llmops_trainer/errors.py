"""The one exception that means "refused input" (exit code 2).

Everything else that goes wrong is a failure (exit code 1) and keeps its own type and
traceback; a refusal is the stage telling the user what to fix, so its message is the whole
story and no traceback is printed.
"""

from __future__ import annotations


class Refused(Exception):
    """The stage refuses its input: bad flags, bad records, a missing base model, a
    method this machine cannot run. The message is printed as ``error: <message>``."""
