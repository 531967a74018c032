"""The watcher the serving and workflow workers run beside their consumers.

Handlers submit and return; a watcher lists the objects its worker manages every
``interval_s`` and reports an object whenever what it would say about it (its *fingerprint*)
differs from what it last reported, and reports an object it saw before (or a handler told it
about) that has disappeared.

The memory is in process: after a restart every object is reported once more, which is
harmless (the gateway orders reports by ``seq``). A failed round (the cluster is down, Redis is
down while publishing) is logged and never stops the worker: the memory changes only once a
report is out, so what was not published is published next round. The watcher is also the
handlers' :class:`ObservationCache`: after changing an object a handler makes it report the
object again even if it looks unchanged.

A worker's watcher says how to observe (:meth:`PollingWatcher._observe`), what a report says
(:meth:`~PollingWatcher._fingerprint`) and how to report (:meth:`~PollingWatcher._report`,
:meth:`~PollingWatcher._report_gone`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from llmops_shared.kube.objects import Live
from llmops_shared.logging import get_logger
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError, StatusSink

Key = tuple[str, str]
"""(namespace, name)"""

T = TypeVar("T")


class Watched(Protocol[T]):
    """What every backend of a watched worker is: named, observable or not, ready or not."""

    @property
    def name(self) -> str:
        """Short backend name reported in status details (``kserve``, ``argo``...)."""
        ...

    @property
    def observable(self) -> bool:
        """Whether a watcher can observe live state (false for plain files)."""
        ...

    async def observe(self, namespaces: Sequence[str]) -> list[Live[T]]:
        """Every object this worker manages in ``namespaces`` with its observed state."""
        ...

    async def ping(self) -> None:
        """Raise unless the backend can serve requests now (readiness)."""
        ...


class ObservationCache(Protocol):
    """The watcher's memory of what it last reported, as the handlers adjust it."""

    def forget(self, namespace: str, name: str) -> None:
        """Report this object's next observation even if it looks unchanged."""
        ...

    def expect_gone(self, namespace: str, name: str, owner: str) -> None:
        """Report the object gone once it has disappeared (seen by the watcher or not)."""
        ...


class NoCache:
    """An :class:`ObservationCache` for backends without a watcher (files)."""

    def forget(self, namespace: str, name: str) -> None:
        return None

    def expect_gone(self, namespace: str, name: str, owner: str) -> None:
        return None


@dataclass
class Seen:
    """What the watcher last reported about one object."""

    owner: str
    fingerprint: str | None = None
    """``None``: report the next observation whatever it is."""

    def forget(self) -> None:
        self.fingerprint = None


S = TypeVar("S", bound=Seen)
W = TypeVar("W")


@dataclass(frozen=True)
class Observation(Generic[T]):
    """One round's objects: ``lives`` to report, and ``elsewhere`` the objects that live on in
    another form (a move between formats), not reported gone when they disappear here."""

    lives: Sequence[Live[T]]
    elsewhere: frozenset[Key] = field(default_factory=frozenset)


def fingerprint(*parts: object) -> str:
    """What a report says, as one comparable string."""
    return json.dumps(list(parts), sort_keys=True, default=str)


class PollingWatcher(ABC, Generic[T, S, W]):
    """Polls ``namespaces`` of ``watched`` (the worker's backend, or what chooses among its
    backends) every ``interval_s`` until stopped and publishes to ``sink``; remembers a
    :class:`Seen` per object."""

    def __init__(
        self, watched: W, sink: StatusSink, *, namespaces: Sequence[str], interval_s: float
    ) -> None:
        self._watched = watched
        self._sink = sink
        self._namespaces = list(namespaces)
        self._interval = interval_s
        self._seen: dict[Key, S] = {}
        self._log = get_logger(type(self).__module__)
        self.rounds = 0

    # ------------------------------------------------------------------ ObservationCache

    def forget(self, namespace: str, name: str) -> None:
        seen = self._seen.get((namespace, name))
        if seen is not None:
            seen.forget()

    def expect_gone(self, namespace: str, name: str, owner: str) -> None:
        self._seen[(namespace, name)] = self._unseen(owner)

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set."""
        self._log.info("watcher_started", namespaces=self._namespaces, interval_s=self._interval)
        while not stop.is_set():
            try:
                await self.poll_once()
            except (DependencyUnavailableError, NonRetryableError) as exc:
                self._log.warning("watcher_round_failed", error=str(exc))
            except Exception as exc:  # noqa: BLE001 - e.g. Redis down while publishing: what
                # was not published is published next round; a crashed watcher stops the worker.
                self._log.error("watcher_round_crashed", error=repr(exc), exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
        self._log.info("watcher_stopped")

    async def poll_once(self) -> int:
        """One round: observe, report what changed and what is gone; the number of reports."""
        observation = await self._observe()
        reports = 0
        present: set[Key] = set()
        for live in observation.lives:
            key = (live.namespace, live.name)
            present.add(key)
            if live.owner:
                reports += await self._on_live(key, live)
        for key in [k for k in self._seen if k not in present]:
            seen = self._seen.get(key)
            if seen is not None and key not in observation.elsewhere:
                reports += await self._report_gone(key, seen)
            self._seen.pop(key, None)  # only once reported: a failed publish is retried
        self.rounds += 1
        return reports

    async def _on_live(self, key: Key, live: Live[T]) -> int:
        """Report ``live`` (which has an owner) if it changed since its last report."""
        fingerprint = self._fingerprint(live)
        seen = self._seen.get(key)
        if seen is not None and seen.fingerprint == fingerprint:
            return 0
        return await self._report(key, live, fingerprint, seen)

    # ------------------------------------------------------------------ the worker's part

    @abstractmethod
    async def _observe(self) -> Observation[T]:
        """This round's objects in the watched namespaces."""

    @abstractmethod
    def _fingerprint(self, live: Live[T]) -> str:
        """What a report about ``live`` says (two equal ones: nothing new to report)."""

    @abstractmethod
    async def _report(self, key: Key, live: Live[T], fingerprint: str, seen: S | None) -> int:
        """Publish the reports about ``live``, then remember them; how many were published."""

    @abstractmethod
    async def _report_gone(self, key: Key, seen: S) -> int:
        """Publish the reports about an object that disappeared; how many were published."""

    @abstractmethod
    def _unseen(self, owner: str) -> S:
        """The memory of an object of ``owner`` not reported yet."""
