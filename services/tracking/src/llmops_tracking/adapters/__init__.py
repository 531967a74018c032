"""Adapters: the only modules of the tracking service that talk to external systems.

``mlflow`` (the only module importing mlflow) and ``builtin`` (no external system); both
implement :class:`llmops_tracking.ports.TrackingBackend`.
"""
