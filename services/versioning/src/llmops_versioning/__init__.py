"""The versioning service: dataset versions with DVC + git (or a built-in object store).

Consumes ``llmops.datasets`` (``DatasetVersionRequested``, ``DatasetRestoreRequested``) and
reports ``dataset_version`` / ``dataset_restore`` status events; see docs/versioning.md.
"""
