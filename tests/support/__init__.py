"""Helpers shared by the test packages (events to publish, polling)."""
