"""The local stack copies every child's output, even lines longer than a pipe buffer."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console

from llmops_cli.stack import Stack, StackOptions

pytestmark = pytest.mark.unit


async def test_a_huge_line_is_printed_and_the_pump_goes_on() -> None:
    out = io.StringIO()
    stack = Stack(StackOptions(), Console(file=out, width=10_000, color_system=None))
    reader = asyncio.StreamReader()
    reader.feed_data(b"first\n" + b"x" * 300_000 + b"\nlast line\n")
    reader.feed_eof()
    await asyncio.wait_for(stack._pump("gateway", reader, "cyan"), timeout=5)

    lines = out.getvalue().splitlines()
    assert lines[0].endswith("| first")
    assert lines[-1].endswith("| last line")
    assert sum(line.count("x") for line in lines) == 300_000
    assert all(line.lstrip().startswith("gateway |") for line in lines)
