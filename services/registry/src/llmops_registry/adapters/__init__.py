"""Adapters: the only modules of the registry service that talk to external systems."""
