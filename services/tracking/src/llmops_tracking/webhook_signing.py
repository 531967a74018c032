"""MLflow webhook signatures: ``v1,`` + base64 HMAC-SHA256 of the delivery id, timestamp and body.

Split out of :mod:`llmops_tracking.webhooks`: the receiver checks signatures, and tests (and any
sender) compute them, with no need for the receiver's Redis or MLflow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

SIGNATURE_VERSION: Final = "v1"


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's ``X-MLflow-Signature`` value for a delivery (``v1,<base64>``)."""
    digest = hmac.new(
        secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_matches(
    secret: str, delivery_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """Whether any ``v1,<sig>`` in ``header`` (space-separated, Standard Webhooks style) is
    the HMAC of this delivery; compared in constant time."""
    expected = base64.b64decode(sign(secret, delivery_id, timestamp, body).split(",", 1)[1])
    matched = False
    for candidate in header.split():
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched |= hmac.compare_digest(given, expected)
    return matched
