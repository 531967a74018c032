"""The serving service: deployment events -> KServe InferenceServices (or the built-in
Deployment + Service, or GitOps manifest files), with a watcher reporting their status.

It consumes ``llmops.serving`` as group ``serving``; ``render/`` turns events into manifests
(pure), ``handlers.py`` applies them through a backend from ``adapters/``, ``moves.py`` moves
endpoints between the two formats (``router.py`` reaches the backend of each), ``watcher.py``
reports what the cluster makes of them on ``llmops.status``. ``app.py`` is the wiring. See
``docs/serving.md``.
"""
