"""Operator scripts over the gateway's database: validate, migrate, rollback.

The integration quickstart's ``scripts/validate_existing_training_jobs.py`` and friends, as one
typer app: ``python -m llmops_gateway.scripts --help``, also plugged into the ``llmops`` command
(the ``llmops.cli`` entry points of this package). They run where the gateway runs (same
``DATABASE_URL``, ``REDIS_URL`` and ``ENVIRONMENT``), change state only through the gateway's
own domain functions and outbox, and publish what they queued themselves, so they work whether
the gateway is up or not.
"""
