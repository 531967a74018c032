"""Backend moves: records moved from a built-in backend to the real system (or back).

A *move* takes what a built-in backend holds to the system that replaces it: experiment runs
to MLflow (:mod:`.experiments`), serving endpoints between the built-in Deployment + Service
and KServe (:mod:`.serving`, also used by the integrations rollback, :mod:`.rollback`). The
gateway plans each move, queues its request once in the outbox (:mod:`.requests`) and reads
how the worker answered; :mod:`.flow` and :mod:`.cli` are the ``migrate`` commands over that.

In module and function names "migration" means an Alembic revision only
(:mod:`llmops_gateway.migrations`); a backend move keeps the word only where it is on the wire
or in front of users (the ``*MigrationRequested`` events, ``details.migration``, the
``llmops.migration_error`` tag, the ``Migration`` condition, the ``migrate`` commands).
"""
