"""The serving watcher: polls the endpoints' objects and reports when their state changes.

It lists the managed objects (label ``app.kubernetes.io/managed-by=llm-ops`` in the
``llm-ops-<env>`` namespaces) every ``WATCH_INTERVAL_S`` and publishes a deployment status
event whenever an object's phase, reason, URL, conditions or traffic differ from what it last
reported: ``Ready`` (with URL and traffic per revision), ``Failed`` (the Ready condition's
reason and message) or ``Pending``; and ``Deleted`` for an object it saw before (or a handler
told it about) that has disappeared. The loop and its memory are
:class:`~llmops_shared.kube.watcher.PollingWatcher`'s.

It also finishes moves between formats (phase 2, :func:`llmops_serving.moves.advance`): each
round it lists the endpoints' objects of the other format too, and reports a new object marked
``llm-ops.io/migrating-from`` (in either format) instead of the old one. An object that
disappeared while the endpoint has an object of the other format is not reported ``Deleted``:
the endpoint lives on there (a move finished by this or another replica).
"""

from __future__ import annotations

from llmops_serving import moves
from llmops_serving.ports import Live, Manifest
from llmops_serving.render.names import CORRELATION_ANNOTATION
from llmops_serving.render.status import Observed
from llmops_serving.report import deployment_status, details, move_info
from llmops_serving.router import FormatRouter, format_of
from llmops_shared.events import Phase
from llmops_shared.events.payloads.details import FormatMove
from llmops_shared.kube.watcher import Key, Observation, PollingWatcher, Seen, fingerprint


class Watcher(PollingWatcher[Observed, Seen, FormatRouter]):
    """Polls the objects of both formats through the router (``Watcher(router, sink,
    namespaces=..., interval_s=...)``) and publishes changes to ``sink``; also the handlers'
    cache."""

    async def _observe(self) -> Observation[Observed]:
        router = self._watched
        lives = await router.backend.observe(self._namespaces)
        others = await router.of(router.other).observe(self._namespaces)
        moving = {
            (live.namespace, live.name): live
            for live in [*lives, *others]
            if live.owner and moves.moving_from(live.manifest) is not None
        }
        # an old object whose successor is coming up is not reported: its successor is
        staying = [live for live in lives if (live.namespace, live.name) not in moving]
        return Observation(
            [*staying, *moving.values()],
            elsewhere=frozenset((live.namespace, live.name) for live in others if live.owner),
        )

    async def _on_live(self, key: Key, live: Live) -> int:
        if moves.moving_from(live.manifest) is not None:
            return await self._progress(key, live)
        return await super()._on_live(key, live)

    def _fingerprint(self, live: Live) -> str:
        """What a report says, minus timestamps that change without the state changing."""
        observed = live.observed
        conditions = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in observed.conditions
        ]
        spec = live.manifest.get("spec")
        return fingerprint(
            observed.phase.value, observed.reason, observed.url, conditions, observed.traffic, spec
        )

    def _unseen(self, owner: str) -> Seen:
        return Seen(owner)

    async def _report(self, key: Key, live: Live, fingerprint: str, seen: Seen | None) -> int:
        assert live.owner is not None
        observed = live.observed
        await self._publish(
            key,
            live.owner,
            observed.phase,
            observed.reason,
            manifest=live.manifest,
            observed=observed,
            correlation_id=_correlation(live),
        )
        return self._reported(
            key,
            live,
            fingerprint,
            "deployment_observed",
            phase=observed.phase.value,
            reason=observed.reason,
        )

    async def _report_gone(self, key: Key, seen: Seen) -> int:
        namespace, name = key
        await self._publish(key, seen.owner, Phase.DELETED, "the object is gone")
        self._log.info("deployment_gone", endpoint_id=seen.owner, name=name, namespace=namespace)
        return 1

    async def _progress(self, key: Key, live: Live) -> int:
        """Report a move in progress (finishing it once the new object is Ready); 1 if
        reported."""
        assert live.owner is not None
        step = await moves.advance(self._watched, live)
        target = format_of(live.manifest)
        source = moves.moving_from(live.manifest)
        assert source is not None
        # once done, the next observation of the unmarked object is not a change
        done = self._fingerprint(live) if step.done else None
        reported = fingerprint(
            step.phase.value, step.reason, step.outcome, live.manifest.get("spec")
        )
        seen = self._seen.get(key)
        if seen is not None and seen.fingerprint in (reported, done):
            return 0
        await self._publish(
            key,
            live.owner,
            step.phase,
            step.reason,
            backend=step.backend,
            manifest=step.manifest,
            observed=live.observed,
            migration=move_info(
                outcome=step.outcome, source=source.value, target=target.value, reason=step.reason
            ),
            correlation_id=_correlation(live),
        )
        return self._reported(
            key,
            live,
            done or reported,
            "migration_observed",
            target=target.value,
            outcome=step.outcome,
            reason=step.reason,
        )

    def _reported(self, key: Key, live: Live, fingerprint: str, event: str, **facts: object) -> int:
        """Log the report just published about ``live`` (``event`` with its ``facts``) and
        remember what it said; the number of reports (one)."""
        assert live.owner is not None
        self._log.info(
            event, endpoint_id=live.owner, name=live.name, namespace=live.namespace, **facts
        )
        self._seen[key] = Seen(live.owner, fingerprint)
        return 1

    async def _publish(
        self,
        key: Key,
        endpoint_id: str,
        phase: Phase,
        reason: str | None,
        *,
        backend: str | None = None,
        manifest: Manifest | None = None,
        observed: Observed | None = None,
        migration: FormatMove | None = None,
        correlation_id: str | None = None,
    ) -> None:
        namespace, name = key
        await self._sink.publish(
            deployment_status(
                entity_id=endpoint_id,
                phase=phase,
                reason=reason,
                details=details(
                    name=name,
                    namespace=namespace,
                    backend=backend or self._watched.backend.name,
                    manifest=manifest,
                    observed=observed,
                    migration=migration,
                ),
                correlation_id=correlation_id,
            )
        )


def _correlation(live: Live) -> str | None:
    """The request that last changed the object (the annotation the renderer writes, read
    where an InferenceService has it: at the manifest's top)."""
    value = ((live.manifest.get("metadata") or {}).get("annotations") or {}).get(
        CORRELATION_ANNOTATION
    )
    return str(value) if value else None
