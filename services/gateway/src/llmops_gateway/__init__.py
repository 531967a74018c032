"""The gateway service: the REST API (FastAPI), its database, the outbox relay and the status
consumer that folds worker reports into the read model. Entry point: :func:`app.create_app`.
"""
