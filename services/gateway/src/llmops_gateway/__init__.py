"""The gateway service: the REST API (FastAPI), its database and the outbox relay.

A skeleton until its issue lands: the package, its settings and its dependencies are in the
workspace so the lock and the layout are settled once.
"""
