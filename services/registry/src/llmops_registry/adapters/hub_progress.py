"""Byte and file counts of a snapshot download, reported as :class:`ImportProgress`.

Split out of :mod:`llmops_registry.adapters.huggingface`: the backend only feeds these counters
from its download thread; how they become progress events is their own job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from llmops_registry.ports import ProgressCallback
from llmops_shared.events.payloads.catalog import ImportProgress


class ByteCounter:
    """Stands in for the tqdm progress bar ``hf_hub_download`` opens per file.

    ``huggingface_hub`` calls a non-tqdm ``tqdm_class`` with the bar's keyword arguments and
    then uses it as a context manager with ``update(n)`` (the Xet path also sets ``total``);
    this forwards the byte counts and prints nothing.
    """

    total: int | None = None

    def __init__(self, on_bytes: Callable[[int], None] | None = None) -> None:
        self._on_bytes = on_bytes

    def __enter__(self) -> ByteCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: float | None = 1) -> None:
        if self._on_bytes is not None and n:
            self._on_bytes(int(n))

    def close(self) -> None:
        return None


class DownloadProgress:
    """Bytes and files done of one snapshot download; fed from the download thread."""

    def __init__(self, callback: ProgressCallback, files_total: int, bytes_total: int) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.files_done = 0
        self._bytes_settled = 0  # bytes of the files done
        self._bytes_current = 0  # bytes of the file in flight

    def start_file(self) -> None:
        with self._lock:
            self._bytes_current = 0
        self._emit()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes_current = max(0, self._bytes_current + n)
        self._emit()

    def finish_file(self, size: int | None) -> None:
        with self._lock:
            self._bytes_settled += size if size is not None else self._bytes_current
            self._bytes_current = 0
            self.files_done += 1
        self._emit()

    def _emit(self) -> None:
        with self._lock:
            done = min(self._bytes_settled + self._bytes_current, max(self.bytes_total, 0))
            progress = ImportProgress(
                stage="downloading",
                files_done=self.files_done,
                files_total=self.files_total,
                bytes_done=done if self.bytes_total else self._bytes_settled,
                bytes_total=self.bytes_total,
            )
        self._callback(progress)
