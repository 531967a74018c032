"""The event payloads, one module per stream."""
