"""Constrained string types shared by the payloads.

They are strict on purpose: other systems publish onto the streams too, and a value that would
only fail deep inside a worker (an InferenceService name Kubernetes rejects, a job id that makes
an invalid workflow name) is cheaper to reject at decode time, as a non-retryable dead letter
with a clear reason, than as a retried 422 from a cluster.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, Field

from llmops_shared.uris import NoCredentials

RESOURCE_ID_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{0,55}[a-z0-9])?$"
DNS1035_LABEL_PATTERN: Final = r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$"
URI_PATTERN: Final = r"^(?:[A-Za-z][A-Za-z0-9+.-]*:\S+|/\S*)$"
ROUTE_PATTERN: Final = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$"
VERSION_TAG_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_+-]*(?:\.[A-Za-z0-9_+-]+)*$"
"""Dot-separated parts: no '..', no leading or trailing '.' (git refuses those ref names)."""
_HF_NAME: Final = r"[A-Za-z0-9][A-Za-z0-9_]*(?:[.-][A-Za-z0-9_]+)*"
HF_REPO_ID_PATTERN: Final = rf"^{_HF_NAME}(?:/{_HF_NAME})?$"
"""The Hub's rule: '-' and '.' separate, never start or end a name, and never double."""

ResourceId = Annotated[
    str,
    Field(
        pattern=RESOURCE_ID_PATTERN,
        description="Platform id (a UUID in practice): lowercase letters, digits and '-', at "
        "most 57 characters, so that derived names such as the workflow 'train-<job_id>' stay "
        "valid 63-character Kubernetes labels.",
        examples=["0b6f3c9e-6f1e-4c8e-9a51-3f1d2a7c9b10"],
    ),
]
"""An id the platform mints (job, endpoint, catalog model, dataset, dataset version)."""

InferenceServiceName = Annotated[
    str,
    Field(
        pattern=DNS1035_LABEL_PATTERN,
        max_length=63,
        description="Kubernetes name of the InferenceService: a DNS-1123 label that also starts "
        "with a letter, which KServe requires (at most 63 characters).",
        examples=["llama-3-8b-sft"],
    ),
]

Uri = Annotated[
    str,
    Field(
        pattern=URI_PATTERN,
        max_length=2048,
        description="URI with a scheme (s3://bucket/key, mlflow-artifacts:/1/x, file:///data) or "
        "an absolute local path (the local stack's file stores); no whitespace.",
    ),
    NoCredentials,
]

Route = Annotated[
    str,
    Field(
        pattern=ROUTE_PATTERN,
        max_length=255,
        description="URL path the endpoint is served under; starts with '/'.",
        examples=["/test-model"],
    ),
]

HfRepoId = Annotated[
    str,
    Field(
        pattern=HF_REPO_ID_PATTERN,
        max_length=96,
        description="Hugging Face Hub repo id: 'name' or 'owner/name'; '-' and '.' separate "
        "parts, never start or end one, and never come twice in a row (the Hub's rule).",
        examples=["microsoft/DialoGPT-medium"],
    ),
]


def _git_tag_name(value: str) -> str:
    """What the pattern cannot say (no look-around in pydantic's regex engine): git refuses a
    ref name ending in '.lock', and names like HEAD or ORIG_HEAD resolve to other commits."""
    if value.endswith(".lock"):
        raise ValueError("a version tag cannot end with '.lock'")
    if value.upper().endswith("HEAD") and value.replace("_", "").isalpha():
        raise ValueError(f"'{value}' is a git symbolic ref name, not a version tag")
    return value


VersionTag = Annotated[
    str,
    Field(
        pattern=VERSION_TAG_PATTERN,
        max_length=128,
        description="Human version label, usable as a git tag: letters, digits, '_', '+', '-' "
        "in parts separated by single dots, starting with a letter or digit, not ending in "
        "'.lock', not a git symbolic name such as HEAD; at most 128 characters.",
        examples=["v1.0.0"],
    ),
    AfterValidator(_git_tag_name),
]
"""A dataset version label; versioning makes it a git tag, so it must be a valid one."""

Name = Annotated[str, Field(min_length=1, max_length=256)]
"""A free-form but non-empty identifier (MLflow names, versions, run ids, service names)."""

REASON_MAX_LENGTH: Final = 2000
"""Longest :data:`Reason`; :func:`llmops_shared.events.clip_reason` cuts longer text to it."""

Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX_LENGTH)]
"""A human-readable explanation; bounded so it fits a log line and a stream field."""
