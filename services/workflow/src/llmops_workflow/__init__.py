"""The workflow service: training events -> Argo Workflows pipelines (or one Kubernetes Job per
stage, or GitOps manifest files), with a watcher reporting their progress.

It consumes ``llmops.training`` as group ``workflow`` (beside ``tracking``: fan-out);
``render/`` turns a TrainJobSpec into a Workflow (pure, deterministic), ``handlers.py``
submits or terminates it through a backend from ``adapters/``, ``watcher.py`` reports what the
cluster makes of it on ``llmops.status`` (``pipeline`` and ``job`` status events). ``app.py``
is the wiring. See ``docs/workflow.md``.
"""
