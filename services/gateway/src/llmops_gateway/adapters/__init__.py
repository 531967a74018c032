"""Adapters: the only modules of the gateway service that talk to external systems."""
