"""Adapters: the only modules of the github-sync service that talk to external systems."""
