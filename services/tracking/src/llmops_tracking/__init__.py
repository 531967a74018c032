"""The tracking service: training jobs -> MLflow experiments and runs (or the built-in record).

It consumes ``llmops.training`` as group ``tracking``; for each submitted job it creates (or
finds again) the job's MLflow run with the spec as params, for each cancelled job it kills that
run, and it reports every run on ``llmops.status`` as an ``experiment_run``. See
``docs/tracking.md``; ``app.py`` is the wiring, ``handlers.py`` the behaviour.
"""
