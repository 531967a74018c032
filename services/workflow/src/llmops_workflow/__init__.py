"""The workflow service: Argo Workflows pipelines for training jobs.

A skeleton until its issue lands: the package, its settings and its dependencies are in the
workspace so the lock and the layout are settled once.
"""
