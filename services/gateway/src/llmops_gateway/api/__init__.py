"""The REST API under ``/llm-ops/v1``: one router per resource."""
