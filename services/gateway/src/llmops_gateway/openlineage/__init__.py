"""OpenLineage run events of training jobs, for Marquez and other lineage tools.

When ``OPENLINEAGE_URL`` is set, the status fold queues a job's run events in the
``openlineage_outbox`` table, in the transaction that changed the job (:mod:`.record`); the
emitter, a background loop of the app, builds each event from the database when it sends it
(:mod:`.events`) and posts it with the ``openlineage-python`` client (:mod:`.sender`), retrying
failures with a backoff (:mod:`.emitter`). So an event is never lost and never sent from the
request path, and nothing is queued while the URL is unset.

This package imports nothing at import time beyond its own modules' dependencies: no client is
built until the app starts the emitter.
"""
