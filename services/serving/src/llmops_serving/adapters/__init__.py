"""Adapters: the only modules of the serving service that talk to external systems."""
