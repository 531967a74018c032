"""Handlers of ``llmops.catalog``: import a model from the Hub; check it for upstream updates.

Plain async functions ``(event, ports) -> status events``; ``app.py`` binds ``ports`` with
``functools.partial``. Each handled event ends in exactly one ``model`` status event, returned to
the runtime so it is committed atomically with the ack:

* an import: ``Succeeded`` with ``details.model`` (:class:`ImportedModel`) or ``Failed`` with a
  one-line ``reason``; while it runs, throttled ``Running`` reports with ``details.progress``
  (:class:`ImportProgress`) are published directly (best effort);
* an update check: always ``Succeeded`` with ``details.upstream`` (:class:`UpstreamCheck`); a
  Hub that cannot be asked is an ``error`` in it, not a failed model (the gateway only updates
  the link's check fields from it).

The platform's rules live here, between the backend's two steps: the architecture must map to a
whitelisted family and ``config.json`` must give the context length, else the import fails
before any weight is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

from llmops_registry.ports import (
    InvalidModel,
    RegistryError,
    RegistryPorts,
    ResolvedModel,
)
from llmops_shared.dispatch import Dispatcher
from llmops_shared.events import (
    Envelope,
    Event,
    ModelImportRequested,
    ModelUpdateCheckRequested,
    Phase,
    StatusEntity,
    clip_reason,
    reply_status,
)
from llmops_shared.events.payloads.catalog import (
    ImportedModel,
    ImportProgress,
    ModelFile,
    UpstreamCheck,
)
from llmops_shared.events.payloads.details import ModelDetails
from llmops_shared.logging import get_logger
from llmops_shared.progress import ProgressReporter
from llmops_shared.specs.families import family_for_architectures, supported_families

REPORTER: Final = "registry"
REGISTRY_TYPE: Final = "huggingface"

CONTEXT_LENGTH_KEYS: Final = (
    "max_position_embeddings",
    "n_positions",
    "max_sequence_length",
    "seq_length",
)
"""``config.json`` keys that give the context length, in order of preference."""

_log = get_logger(__name__)
_model_status: Final = partial(reply_status, StatusEntity.MODEL, reporter=REPORTER)
"""The ``model`` status event answering a handled event."""


class UnsupportedModel(InvalidModel):
    """The model is readable but not one the platform trains or serves."""


async def handle_import(
    event: Event, request: ModelImportRequested, ports: RegistryPorts
) -> Envelope:
    """Resolve, check and (optionally) download the model; report Succeeded or Failed."""
    repo = request.registry_model_id
    log = _log.bind(model_id=request.model_id, repo_id=repo, revision=request.revision)

    def running(progress: ImportProgress) -> Envelope:
        return _model_status(
            event,
            request.model_id,
            Phase.RUNNING,
            reason=_progress_reason(repo, request.revision, progress),
            details=ModelDetails(progress=progress),
        )

    failure: str | None = None
    imported: ImportedModel | None = None
    resolved: ResolvedModel | None = None
    async with ProgressReporter(
        ports.sink, running, interval_s=ports.progress_interval_s
    ) as reporter:
        reporter(ImportProgress(stage="resolving"))
        try:
            resolved = await ports.backend.resolve(repo, request.revision)
            imported = imported_model(resolved)
            if request.download:
                uri = await ports.backend.download(resolved, reporter)
                imported = imported.model_copy(update={"snapshot_uri": uri})
        except RegistryError as exc:
            failure = str(exc)
            log.warning("import_failed", error_type=type(exc).__name__, reason=failure)
        except Exception as exc:  # an import must end Failed, never stuck Running
            failure = f"import of {repo} failed unexpectedly: {type(exc).__name__}: {exc}"
            log.exception("import_crashed")
    # built after the reporter stopped, so its seq is newer than every progress report
    if failure is not None or imported is None or resolved is None:
        return _model_status(
            event, request.model_id, Phase.FAILED, reason=failure or f"import of {repo} failed"
        )
    log.info(
        "model_imported",
        sha=imported.revision,
        family=imported.family,
        files=len(imported.files),
        total_bytes=imported.total_bytes,
        snapshot_uri=imported.snapshot_uri,
    )
    reason = f"imported {repo} at {imported.revision}"
    if not resolved.complete_listing:
        # offline on a cache without the commit's file list: never claim the whole commit
        reason += (
            f" (from the offline cache, which has no file list of this commit: the "
            f"{len(imported.files)} cached files are reported"
            + (" and materialised" if imported.snapshot_uri else "")
            + ", the commit may have more)"
        )
        log.warning("import_file_list_unverified", files=len(imported.files))
    elif imported.snapshot_uri:
        reason += " (snapshot downloaded)"
    details = ModelDetails(model=imported)
    return _model_status(event, request.model_id, Phase.SUCCEEDED, reason=reason, details=details)


async def handle_update_check(
    event: Event, request: ModelUpdateCheckRequested, ports: RegistryPorts
) -> Envelope:
    """Compare the pinned commit with upstream; always Succeeded, errors go in the details."""
    repo = request.registry_model_id
    pinned = request.pinned_revision
    upstream: str | None = None
    error: str | None = None
    try:
        upstream = await ports.backend.current_revision(repo, request.revision)
    except RegistryError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a check answers with an error, it never crashes
        error = f"update check of {repo} failed unexpectedly: {type(exc).__name__}: {exc}"
        _log.exception("update_check_crashed", model_id=request.model_id, repo_id=repo)
    updated = upstream is not None and upstream != pinned
    check = UpstreamCheck(
        pinned_revision=pinned,
        upstream_revision=upstream,
        updated=updated,
        checked_at=datetime.now(UTC),
        error=clip_reason(error),
    )
    if error is not None:
        reason = f"update check failed: {error}"
    elif updated:
        reason = f"upstream updated: {upstream} (pinned {pinned})"
    else:
        reason = f"up to date: upstream is still {pinned}"
    _log.info(
        "update_checked",
        model_id=request.model_id,
        repo_id=repo,
        pinned=pinned,
        upstream=upstream,
        updated=updated,
        error=error,
    )
    details = ModelDetails(upstream=check)
    return _model_status(event, request.model_id, Phase.SUCCEEDED, reason=reason, details=details)


handle_catalog_event: Final[Dispatcher[RegistryPorts]] = Dispatcher(
    "registry",
    {
        ModelImportRequested: handle_import,
        ModelUpdateCheckRequested: handle_update_check,
    },
)
"""The handler of ``llmops.catalog``: ``handler(event, ports)``; types this service does not act
on are skipped."""


def imported_model(resolved: ResolvedModel) -> ImportedModel:
    """The facts of a resolved model, after the platform's rules (family, context length).

    Raises :class:`UnsupportedModel` for an architecture outside the whitelist and
    :class:`InvalidModel` for a ``config.json`` that does not say what is needed.
    """
    config = resolved.config
    where = f"config.json of {resolved.repo_id} at {resolved.revision}"
    architectures = _architectures(config, where)
    families = ", ".join(supported_families())
    family = family_for_architectures(architectures)
    if family is None:
        if not architectures:
            raise UnsupportedModel(
                f"{where} lists no architectures: supported families are {families}"
            )
        raise UnsupportedModel(
            f"unsupported architecture {', '.join(architectures)}: supported families are "
            f"{families}"
        )
    model_type = config.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise InvalidModel(f"{where} is malformed: model_type is not a string")
    return ImportedModel(
        registry_type=REGISTRY_TYPE,
        repo_id=resolved.repo_id,
        revision=resolved.revision,
        url=resolved.url,
        architectures=architectures,
        model_type=model_type,
        family=family,
        max_position_embeddings=context_length(config, where),
        license=resolved.license,
        gated=resolved.gated,
        private=resolved.private,
        safetensors=any(f.path.endswith(".safetensors") for f in resolved.files),
        files=[ModelFile(path=f.path, size=f.size) for f in resolved.files],
        total_bytes=resolved.total_bytes,
        last_modified=resolved.last_modified,
    )


def context_length(config: Mapping[str, Any], where: str = "config.json") -> int:
    """The model's context length from the first of :data:`CONTEXT_LENGTH_KEYS` present."""
    for key in CONTEXT_LENGTH_KEYS:
        if key not in config or config[key] is None:
            continue
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
            raise InvalidModel(f"{where} is malformed: {key} is {value!r}, not a positive integer")
        return value
    raise InvalidModel(
        f"{where} has no max_position_embeddings (nor {', '.join(CONTEXT_LENGTH_KEYS[1:])}): "
        "the model's context length is unknown"
    )


def _architectures(config: Mapping[str, Any], where: str) -> list[str]:
    value = config.get("architectures")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise InvalidModel(f"{where} is malformed: architectures is not a list of strings")
    return list(value)


def _progress_reason(repo: str, revision: str | None, progress: ImportProgress) -> str:
    if progress.stage == "resolving":
        return f"resolving {repo}" + (f" at {revision}" if revision else "")
    return (
        f"downloading {repo}: {progress.files_done}/{progress.files_total} files, "
        f"{progress.bytes_done}/{progress.bytes_total} bytes"
    )
