"""The shared progress reporter: throttled per stage, safe from threads, best effort."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from llmops_shared.events import Envelope
from llmops_shared.progress import ProgressReporter

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Step:
    stage: str
    done: int = 0


class Sink:
    def __init__(self, *, fail: bool = False) -> None:
        self.published: list[str] = []
        self.fail = fail

    async def publish(self, envelope: Envelope) -> str:
        if self.fail:
            raise ConnectionError("redis is gone")
        self.published.append(envelope.id)
        return "0-1"


async def test_reports_are_throttled_per_stage_and_built_where_observed() -> None:
    sink, now, built = Sink(), [0.0], list[Step]()

    def build(step: Step) -> Envelope:
        built.append(step)
        return Envelope.model_construct(id=str(len(built)))

    reporter = ProgressReporter(sink, build, interval_s=0.5, clock=lambda: now[0])

    def from_thread() -> None:
        for i in range(100):  # 100 calls within 0.1 s: one report
            now[0] = i / 1000
            reporter(Step("fetching", i))
        reporter(Step("hashing"))  # a new stage: reported at once
        now[0] = 1.0
        reporter(Step("hashing", 50))  # the interval passed

    await asyncio.to_thread(from_thread)
    await reporter.drain()
    assert [(s.stage, s.done) for s in built] == [("fetching", 0), ("hashing", 0), ("hashing", 50)]
    assert sink.published == ["1", "2", "3"]


async def test_without_a_sink_nothing_is_built() -> None:
    def build(_: Step) -> Envelope:
        raise AssertionError("not called")

    async with ProgressReporter(None, build) as reporter:
        reporter(Step("fetching"))
    assert reporter.published == 0


async def test_a_failing_publish_or_build_never_reaches_the_caller() -> None:
    sink = Sink(fail=True)
    async with ProgressReporter(
        sink, lambda step: Envelope.model_construct(id="x"), interval_s=0
    ) as reporter:
        reporter(Step("resolving"))
    assert sink.published == []

    def broken(_: Step) -> Envelope:
        raise ValueError("bad progress")

    async with ProgressReporter(Sink(), broken, interval_s=0) as reporter:
        reporter(Step("resolving"))  # logged, not raised
    assert reporter.published == 0
