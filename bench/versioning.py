"""Versioning benchmark: time to record a dataset version (DVC and built-in) and to diff two.

    uv run python bench/versioning.py                    # 1k and 10k files
    uv run python bench/versioning.py --files 1000 --files 50000

For each size a dataset of small files (~0.1-1.5 KB, nested directories) is generated in a
temporary directory; then, per backend, through the real backend code the worker runs:

* **v1**: a first version (a new git+DVC repository: git init, dvc init, fetch, dvc add,
  commit, dvc push to a local directory remote, tag; built-in: hash into the object store);
* **v2**: a second version after changing 1 % of the files (DVC re-hashes every file);
* **diff**: ``diff_manifests`` on the two reported manifests (what the gateway runs);
* **floor**: ``shutil.copytree`` of the same data, the raw cost of touching every file once.

It prints a Markdown table; copy it to docs/benchmarks.md with the command, machine and date.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from llmops_shared.events.payloads.datasets import VersionFacts
from llmops_shared.manifest_diff import diff_manifests
from llmops_versioning.adapters.builtin import BuiltinBackend
from llmops_versioning.adapters.dvc import DvcBackend, DvcOptions
from llmops_versioning.ports import VersioningBackend, VersionRequest, no_progress


def generate(root: Path, count: int) -> None:
    for i in range(count):
        path = root / f"shard-{i % 32:02d}" / f"part-{i % 7}" / f"rec-{i:06d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        line = f'{{"id": {i}, "text": "record {i}", "pad": "{"x" * (i % 97)}"}}\n'
        path.write_text(line * (1 + i % 13))


def touch_one_percent(root: Path) -> int:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    changed = files[:: max(1, len(files) // max(1, len(files) // 100))]
    for path in changed:
        path.write_text(path.read_text() + '{"edited": true}\n')
    return len(changed)


def timed_version(
    backend: VersioningBackend, dataset_id: str, tag: str, source: Path
) -> tuple[float, VersionFacts]:
    request = VersionRequest(dataset_id, str(uuid.uuid4()), tag, "sft_pair", str(source))
    started = time.perf_counter()
    if isinstance(backend, DvcBackend | BuiltinBackend):
        facts = backend.create_version_sync(request, no_progress)
    else:  # pragma: no cover - only the two backends exist
        raise TypeError(backend)
    return time.perf_counter() - started, facts


def run(count: int, work: Path) -> list[tuple[str, float, float, float, int]]:
    data = work / f"data-{count}"
    generate(data, count)
    started = time.perf_counter()
    shutil.copytree(data, work / f"copy-{count}")
    floor = time.perf_counter() - started
    rows = [("copytree (floor)", floor, float("nan"), float("nan"), 0)]
    backends: list[tuple[str, VersioningBackend]] = [
        ("dvc", DvcBackend(DvcOptions(repos_dir=work / f"repos-{count}",
                                      remote_url=str(work / f"remote-{count}")))),
        ("builtin", BuiltinBackend(work / f"builtin-{count}")),
    ]  # fmt: skip
    v2_data = work / f"data-{count}-v2"
    shutil.copytree(data, v2_data)
    changed = touch_one_percent(v2_data)
    for name, backend in backends:
        dataset_id = str(uuid.uuid4())
        t1, v1 = timed_version(backend, dataset_id, "v1", data)
        t2, v2 = timed_version(backend, dataset_id, "v2", v2_data)
        started = time.perf_counter()
        diff = diff_manifests(v1.files, v2.files)
        t_diff = time.perf_counter() - started
        assert len(diff.modified) == changed, (len(diff.modified), changed)
        rows.append((name, t1, t2, t_diff, v1.total_bytes))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, action="append", help="dataset sizes (repeat)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    sizes = args.files or [1_000, 10_000]
    work = Path(tempfile.mkdtemp(prefix="llmops-bench-versioning-"))
    try:
        print(f"# versioning benchmark: {platform.node()}, Python {platform.python_version()}")
        print()
        print("| files | MB | backend | v1 (s) | v2, 1 % changed (s) | diff (ms) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for count in sizes:
            rows = run(count, work)
            megabytes = max(row[4] for row in rows) / 1e6
            for name, t1, t2, t_diff, _ in rows:
                v2 = "" if t2 != t2 else f"{t2:.2f}"  # NaN: not applicable
                diff = "" if t_diff != t_diff else f"{t_diff * 1000:.1f}"
                print(f"| {count:,} | {megabytes:.1f} | {name} | {t1:.2f} | {v2} | {diff} |")
    finally:
        if args.keep:
            print(f"\n(kept {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
