"""Adapters: the only modules of the workflow service that talk to external systems."""
