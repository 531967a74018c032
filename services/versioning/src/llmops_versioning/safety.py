"""What the worker may read and write: safe dataset-relative paths, local roots, redacted URIs.

Relative paths come from places the worker does not control: S3 object keys, file names of a
local source, DVC ``.dir`` objects read back from a remote, manifests on disk. Each one is
checked by :func:`check_relpath` before it is joined to a directory, and every local write goes
through :func:`safe_join` (resolved, symlinks followed, must stay under its root). Local
``storage_uri`` and ``target_uri`` paths are checked by :class:`LocalAccess`: never the system's
``/proc``, ``/sys``, ``/dev``, ``/etc`` or the worker's own directories, and, when
``LOCAL_DATA_ROOTS`` is set, only inside one of those roots.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llmops_versioning.ports import VersioningFailed

SYSTEM_DENIED: Final = (Path("/proc"), Path("/sys"), Path("/dev"), Path("/etc"))
"""Never read or written, whatever LOCAL_DATA_ROOTS says."""

_MD5: Final = re.compile(r"^[0-9a-f]{32}(?:\.dir)?$")


def unsafe_relpath(relpath: str) -> bool:
    """True unless ``relpath`` is a plain relative path: '/'-separated, non-empty parts, none
    of them '.' or '..', no backslash, no NUL (so it can never leave the directory it is
    joined to)."""
    if not relpath or "\\" in relpath or "\x00" in relpath or relpath.startswith("/"):
        return True
    return any(part in ("", ".", "..") for part in relpath.split("/"))


def check_relpath(relpath: str, *, what: str) -> str:
    """``relpath`` if safe, else :class:`VersioningFailed` ``<what> '<relpath>' is not a safe
    relative path``."""
    if unsafe_relpath(relpath):
        raise VersioningFailed(f"{what} {relpath!r} is not a safe relative path")
    return relpath


def check_md5(md5: str, *, what: str) -> str:
    """An md5 hex digest (optionally DVC's ``.dir`` suffix): it becomes an object path."""
    if not _MD5.match(md5):
        raise VersioningFailed(f"{what}: {md5!r} is not an md5 digest")
    return md5


def check_name(name: str, *, what: str) -> str:
    """An id or tag used as one path component (a file or directory name)."""
    if unsafe_relpath(name) or "/" in name:
        raise VersioningFailed(f"{what} {name!r} cannot be used as a file name")
    return name


def safe_join(root: Path, relpath: str, *, what: str = "path") -> Path:
    """``root / relpath``, refused unless it resolves (symlinks followed) inside ``root``."""
    check_relpath(relpath, what=what)
    base = root.resolve()
    joined = (base / relpath).resolve()
    if joined == base or not joined.is_relative_to(base):
        raise VersioningFailed(f"{what} {relpath!r} resolves outside {root}")
    return base / relpath


def redact_uri(uri: str) -> str:
    """``scheme://user:***@host/path`` for a URI with credentials; anything else unchanged.

    Only the authority (between ``://`` and the next ``/``) is looked at, so an ``@`` in a path
    or object key is left alone.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return uri
    credentials, _, host = authority.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def _resolved(paths: Iterable[Path]) -> tuple[Path, ...]:
    out: list[Path] = []
    for path in paths:
        for candidate in (Path(path).absolute(), Path(path).resolve()):
            if candidate not in out:
                out.append(candidate)
    return tuple(out)


@dataclass(frozen=True)
class LocalAccess:
    """Which local paths a source may be read from and a restore may write to.

    ``roots`` empty: any path outside ``denied`` (plus :data:`SYSTEM_DENIED`). Paths are
    resolved (symlinks followed) before they are compared.
    """

    roots: tuple[Path, ...] = ()
    denied: tuple[Path, ...] = ()

    @classmethod
    def of(cls, roots: Iterable[Path] = (), denied: Iterable[Path] = ()) -> LocalAccess:
        return cls(
            roots=tuple(Path(r).resolve() for r in roots),
            denied=_resolved([*SYSTEM_DENIED, *denied]),
        )

    def check(self, path: Path, *, what: str, uri: str, writing: bool = False) -> Path:
        """The resolved ``path`` if a source (or, ``writing``, a restore target) may be there.

        Refused: inside a denied directory, or containing one (a source or target that holds
        the worker's repositories or ``/proc``); with roots set, not inside one of them (a
        target must be strictly below a root, so its staging directory stays inside too).
        """
        resolved = path.resolve()
        shown = redact_uri(uri)
        denied = self.denied or _resolved(SYSTEM_DENIED)
        for banned in denied:
            if resolved.is_relative_to(banned) or banned.is_relative_to(resolved):
                raise VersioningFailed(
                    f"{what} {shown} is not allowed: it resolves to {resolved}, which overlaps "
                    f"{banned} (system and worker directories are never read or written)"
                )
        if self.roots and not any(
            resolved.is_relative_to(root) and (resolved != root or not writing)
            for root in self.roots
        ):
            roots = ", ".join(str(r) for r in self.roots)
            where = "below" if writing else "inside"
            raise VersioningFailed(
                f"{what} {shown} is not allowed: it resolves to {resolved}, which is not "
                f"{where} LOCAL_DATA_ROOTS ({roots})"
            )
        return resolved
