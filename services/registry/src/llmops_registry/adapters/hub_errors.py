"""Hub failures in the registry's terms: which are worth a retry, and the one-line reason.

Split out of :mod:`llmops_registry.adapters.huggingface`: classifying and translating the
``huggingface_hub`` client's errors (gated, not found, 5xx, no connection, ...) is a job of its
own, apart from making the calls. A reason never contains the token: it is scrubbed out.
"""

from __future__ import annotations

from typing import Final

import httpx2
from huggingface_hub.errors import (
    FileMetadataError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from llmops_registry.adapters.hub_metadata import DEFAULT_BRANCH
from llmops_registry.ports import (
    AccessDenied,
    InvalidModel,
    RegistryError,
    RegistryUnavailable,
    RepoNotFound,
    RevisionNotFound,
)

TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})


def transient(exc: BaseException) -> bool:
    """Worth another try: no connection, a timeout, or the Hub answering 408/429/5xx."""
    if isinstance(exc, OfflineModeIsEnabled):
        return False
    if isinstance(exc, httpx2.TransportError):
        return True
    if isinstance(exc, HfHubHTTPError):
        return exc.response.status_code in TRANSIENT_STATUS
    if isinstance(exc, LocalEntryNotFoundError):
        # online, hf_hub_download raises this when its HEAD failed (after its own retries)
        # and the file is not cached: as transient as the cause
        return exc.__cause__ is not None and transient(exc.__cause__)
    return False


def short(exc: BaseException | None) -> str:
    """One line about ``exc``: ``HTTP 503`` for Hub answers, else the first line of the error."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        return short(exc.__cause__)
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code
        message = exc.server_message or ""
        first = message.strip().splitlines()[0] if message.strip() else ""
        return f"HTTP {status}" + (f" {first}" if first else "")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def scrub(text: str, token: str | None) -> str:
    """Remove the token from a message (defence in depth: the client never echoes it)."""
    return text.replace(token, "***") if token else text


def translate(
    exc: Exception,
    repo_id: str,
    revision: str | None,
    what: str,
    attempts: int,
    *,
    endpoint: str,
    token: str | None,
) -> Exception:
    """The :class:`RegistryError` that says what went wrong, in one scrubbed line."""
    where = endpoint
    cause = exc.__cause__
    if (
        isinstance(exc, LocalEntryNotFoundError)
        and isinstance(cause, Exception)
        and not isinstance(cause, FileMetadataError)
    ):
        exc = cause  # the Hub's own answer says more
    if transient(exc):
        return RegistryUnavailable(
            scrub(
                f"Hugging Face Hub unreachable at {where} after {attempts} attempts: {short(exc)}",
                token,
            )
        )
    if isinstance(exc, GatedRepoError):
        need = (
            "HF_TOKEN is not set"
            if token is None
            else "the token in HF_TOKEN has not been granted access"
        )
        return AccessDenied(
            f"repository {repo_id} on {where} is gated and {need}: request access at "
            f"{where}/{repo_id} and set HF_TOKEN to a token of an account that has it"
        )
    if isinstance(exc, RepositoryNotFoundError):
        hint = (
            "if it is private, set HF_TOKEN to a token that can read it"
            if token is None
            else "or the token in HF_TOKEN cannot read it"
        )
        return RepoNotFound(f"repository {repo_id} not found on {where} ({hint})")
    if isinstance(exc, RevisionNotFoundError):
        wanted = revision or DEFAULT_BRANCH
        return RevisionNotFound(f"revision {wanted} not found in repository {repo_id} on {where}")
    if isinstance(exc, RemoteEntryNotFoundError):
        return InvalidModel(f"{what} failed: the file is not in {repo_id} at {revision} on {where}")
    if isinstance(exc, HfHubHTTPError) and exc.response.status_code in (401, 403):
        return AccessDenied(
            f"access to {repo_id} on {where} denied (HTTP {exc.response.status_code}): "
            "check HF_TOKEN"
        )
    if isinstance(exc, HfHubHTTPError):
        return RegistryError(scrub(f"{what} for {repo_id} failed on {where}: {short(exc)}", token))
    if isinstance(exc, LocalEntryNotFoundError) and isinstance(exc.__cause__, FileMetadataError):
        return RegistryError(
            scrub(
                f"{where} does not answer like a Hugging Face Hub ({what} of {repo_id}): "
                f"{short(exc.__cause__)}",
                token,
            )
        )
    if isinstance(exc, OfflineModeIsEnabled):
        return RegistryError(
            "the huggingface_hub client is in offline mode (HF_HUB_OFFLINE is set in its "
            "environment) but the worker is configured online"
        )
    if isinstance(exc, HFValidationError):
        return RegistryError(scrub(f"invalid repository id or revision: {exc}", token))
    if isinstance(exc, RegistryError):
        return exc
    return exc  # unknown: the handler reports it as an unexpected failure
