"""``llmops models`` and ``llmops datasets``: the catalog from the terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llmops_cli.commands.train import ApiKey, GatewayUrl, answered, client_for
from llmops_shared.config import local_data_dir

models_app = typer.Typer(
    help="Catalog models: add by hand, import from a registry.", no_args_is_help=True
)
datasets_app = typer.Typer(help="Catalog datasets and their versions.", no_args_is_help=True)
console = Console()

_DONE = {"Ready", "Succeeded", "Failed", "Cancelled"}
Watch = Annotated[bool, typer.Option(help="follow the status until it settles")]
Timeout = Annotated[float, typer.Option(help="stop watching after this many seconds")]


def _follow(fetch: Callable[[], dict[str, Any]], timeout_s: float) -> dict[str, Any]:
    """Print each new status (with progress) until it is final or the time is up."""
    last: tuple[Any, ...] = ()
    deadline = time.monotonic() + timeout_s
    current = fetch()
    while True:
        progress = current.get("progress") or {}
        state = (current.get("status"), progress.get("files_done"), progress.get("bytes_done"))
        if state != last:
            line = f"[bold]{current.get('status')}[/bold]"
            if progress:
                line += (
                    f" {progress.get('stage', '')} {progress.get('files_done', 0)}/"
                    f"{progress.get('files_total', 0)} files"
                )
            if current.get("reason"):
                line += f": {current['reason']}"
            console.print(line)
            last = state
        if current.get("status") in _DONE:
            return current
        if time.monotonic() > deadline:
            console.print("[yellow]stopped watching (timeout); the work goes on[/yellow]")
            return current
        time.sleep(1.0)
        current = fetch()


@models_app.command("add")
def add_model(
    name: Annotated[str, typer.Argument(help="catalog name, e.g. llama-3-8b-pretrain-v1")],
    family: Annotated[str, typer.Option(help="llama | mistral | gemma | bert")],
    max_position_embeddings: Annotated[int, typer.Option(help="the model's context length")],
    storage_uri: Annotated[
        str | None,
        typer.Option(
            help="where the model's files are (s3://..., file://..., hf://repo@commit or an "
            "absolute path); jobs training on it read them there"
        ),
    ] = None,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Register a model in the catalog by hand."""
    body: dict[str, Any] = {
        "name": name,
        "family": family,
        "max_position_embeddings": max_position_embeddings,
    }
    if storage_uri is not None:
        body["storage_uri"] = storage_uri
    with client_for(gateway, api_key) as client, answered(gateway):
        model = client.add_model(body)
    console.print(f"model [bold]{name}[/bold] registered: {model.get('id')}")


@models_app.command("tiny")
def tiny_model(
    name: Annotated[str, typer.Argument(help="catalog name")] = "tiny-llama",
    family: Annotated[str, typer.Option(help="llama | mistral | gemma | bert")] = "llama",
    max_position_embeddings: Annotated[int, typer.Option(help="context length")] = 2048,
    output: Annotated[
        Path | None, typer.Option(help="where to write it (default: <data dir>/models/tiny/NAME)")
    ] = None,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Put a TINY model of FAMILY with random weights into the catalog, for smoke tests.

    Built from a config by the reference trainer (no download), so a job can train on a laptop
    CPU in seconds; its weights are random and it knows nothing: never serve it.
    """
    target = (output or local_data_dir() / "models" / "tiny" / name).resolve()
    command = [sys.executable, "-m", "llmops_trainer.tiny_model", f"--family={family}"]
    command += [f"--output={target}", f"--max-position-embeddings={max_position_embeddings}"]
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        console.print(f"[bold red]could not build the tiny model[/bold red] ({' '.join(command)}):")
        console.print((built.stderr or built.stdout).strip()[-2000:], markup=False)
        raise typer.Exit(1)
    facts = json.loads(built.stdout.strip().splitlines()[-1])
    body = {
        "name": name,
        "family": facts["family"],
        "max_position_embeddings": facts["max_position_embeddings"],
        "storage_uri": facts["path"],
    }
    with client_for(gateway, api_key) as client, answered(gateway):
        model = client.add_model(body)
    console.print(
        f"model [bold]{name}[/bold] registered: {model.get('id')} ({facts['family']}, "
        f"[yellow]random weights, for smoke tests only[/yellow]) at {facts['path']}"
    )


@models_app.command("import")
def import_model(
    repo_id: Annotated[str, typer.Argument(help="Hugging Face repo id, e.g. org/name")],
    revision: Annotated[str | None, typer.Option(help="branch, tag or commit")] = None,
    name: Annotated[str | None, typer.Option(help="catalog name (default: the repo id)")] = None,
    download: Annotated[bool, typer.Option(help="also download a snapshot")] = False,
    watch: Watch = False,
    timeout: Timeout = 600,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Import a model from Hugging Face Hub into the catalog (pinned to a commit)."""
    body: dict[str, Any] = {"registryType": "huggingface", "registryModelId": repo_id}
    body |= {"revision": revision, "name": name, "download": download}
    with client_for(gateway, api_key) as client, answered(gateway):
        model = client.import_model({k: v for k, v in body.items() if v is not None})
        console.print(f"model [bold]{model['name']}[/bold] ({model['id']}): {model['status']}")
        if watch:
            final = _follow(lambda: client.model(model["id"]), timeout)
            if final.get("status") == "Ready":
                console.print(
                    f"family {final.get('family')}, max_position_embeddings "
                    f"{final.get('maxPositionEmbeddings')}, verified {final.get('verified')}"
                )


@models_app.command("check-updates")
def check_updates(
    model_id: str, gateway: GatewayUrl = "http://127.0.0.1:8000", api_key: ApiKey = None
) -> None:
    """Ask whether the registry moved past the model's pinned commit (see `registry-links`)."""
    with client_for(gateway, api_key) as client, answered(gateway):
        link = client.check_model_updates(model_id)
    console.print(f"check queued for {link['repoId']} (pinned {link['resolvedRevision']})")


@datasets_app.command("add")
def add_dataset(
    name: str,
    type: Annotated[
        str, typer.Option(help="pretrain_corpus | sft_pair | rag_qa | rlhf_pair | embedding_pair")
    ],
    storage_uri: Annotated[str, typer.Option(help="s3://bucket/prefix or a local path")],
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Register a dataset in the catalog."""
    with client_for(gateway, api_key) as client, answered(gateway):
        dataset = client.create_dataset({"name": name, "type": type, "storageUri": storage_uri})
    console.print(f"dataset [bold]{name}[/bold] registered: {dataset['id']}")


@datasets_app.command("version")
def create_version(
    dataset_id: str,
    version_tag: Annotated[str, typer.Argument(help="a semantic version, e.g. v1.0.0")],
    watch: Watch = False,
    timeout: Timeout = 3600,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Snapshot the dataset's data as a new version."""
    with client_for(gateway, api_key) as client, answered(gateway):
        version = client.create_dataset_version(dataset_id, version_tag)
        console.print(f"version [bold]{version_tag}[/bold] ({version['id']}): {version['status']}")
        if watch:
            final = _follow(lambda: client.dataset_version(dataset_id, version["id"]), timeout)
            if final.get("status") == "Succeeded":
                console.print(
                    f"{final.get('fileCount')} files, {final.get('totalBytes')} bytes, "
                    f"digest {final.get('digest')}"
                )


@datasets_app.command("diff")
def diff(
    dataset_id: str,
    version_id: str,
    base: Annotated[str | None, typer.Option(help="base version id (default: parent)")] = None,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Files added, modified and deleted between two versions."""
    with client_for(gateway, api_key) as client, answered(gateway):
        changes = client.dataset_diff(dataset_id, version_id, base)
    table = Table("change", "path", "base size", "size")
    for kind in ("added", "modified", "deleted"):
        for change in changes[kind]:
            table.add_row(kind, change["path"], str(change["baseSize"]), str(change["size"]))
    console.print(table)
    console.print(changes["summary"])


@datasets_app.command("restore")
def restore(
    dataset_id: str,
    version_id: str,
    target_uri: Annotated[str, typer.Argument(help="an empty local path or s3:// prefix")],
    watch: Watch = False,
    timeout: Timeout = 3600,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Materialise a version's files at TARGET_URI."""
    with client_for(gateway, api_key) as client, answered(gateway):
        record = client.restore_dataset_version(dataset_id, version_id, target_uri)
        console.print(f"restore {record['id']}: {record['status']}")
        if watch:
            _follow(lambda: client.get(record["statusUrl"]), timeout)
