"""What the gateway does, as plain functions over a session factory: no FastAPI, no Redis."""
