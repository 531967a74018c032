"""The tracking service: MLflow experiment tracking for training jobs.

A skeleton until its issue lands: the package, its settings and its dependencies are in the
workspace so the lock and the layout are settled once.
"""
