"""Adapters: the only modules of the tracking service that talk to external systems."""
