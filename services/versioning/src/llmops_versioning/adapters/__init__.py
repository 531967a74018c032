"""Adapters: the only modules of the versioning service that talk to external systems."""
