"""``llmops train``: submit and follow training jobs through the gateway's API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.text import Text

from llmops_cli.client import GatewayClient, GatewayError
from llmops_cli.stack import api_key_path
from llmops_shared.config import local_data_dir

train_app = typer.Typer(help="Submit and follow training jobs.", no_args_is_help=True)
console = Console()

GatewayUrl = Annotated[str, typer.Option(envvar="LLMOPS_GATEWAY_URL", help="gateway base URL")]
ApiKey = Annotated[
    str | None,
    typer.Option(envvar="LLMOPS_API_KEY", help="API key (default: .llmops/api-key)"),
]
_TERMINAL = {"Succeeded", "Failed", "Cancelled"}


def client_for(gateway: str, api_key: str | None) -> GatewayClient:
    if api_key is None:
        path = api_key_path(local_data_dir())
        api_key = path.read_text().strip() if path.exists() else None
    return GatewayClient(gateway, api_key=api_key)


def refused(exc: GatewayError) -> typer.Exit:
    console.print(f"[bold red]refused ({exc.status_code})[/bold red]")
    for line in exc.messages():
        console.print(f"  - {line}")
    return typer.Exit(1)


@contextmanager
def answered(gateway: str, *, not_found_hint: str | None = None) -> Iterator[None]:
    """Turn what can go wrong talking to the gateway into a message and exit code 1: its
    refusals (with its own words, and ``not_found_hint`` after a 404), and no answer at all;
    never a traceback. Every command that calls the gateway runs inside it."""
    try:
        yield
    except GatewayError as exc:
        error = refused(exc)
        if exc.status_code == 404 and not_found_hint:
            console.print(not_found_hint, markup=False, highlight=False)
        raise error from exc
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        console.print(
            Text(f"no answer from the gateway at {gateway}: {type(exc).__name__}: {exc}", "red")
        )
        raise typer.Exit(1) from exc


def request_body(document: Any) -> dict[str, Any]:
    """A YAML file holds either the whole request body or just the TrainJobSpec."""
    if not isinstance(document, dict):
        raise typer.BadParameter("the YAML file must hold a mapping")
    if "trainJobSpec" in document:
        return document
    spec = document
    return {"jobType": str(spec.get("job_type", "")).lower() or None, "trainJobSpec": spec}


@train_app.command("submit")
def submit(
    spec_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML file")],
    watch: Annotated[bool, typer.Option(help="follow the job's status live")] = False,
    timeout: Annotated[float, typer.Option(help="stop watching after this many seconds")] = 600,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Submit a training job from SPEC_FILE (the request body, or only its trainJobSpec)."""
    body = request_body(yaml.safe_load(spec_file.read_text()))
    with client_for(gateway, api_key) as client, answered(gateway):
        job = client.submit_training_job(body)
        console.print(f"job [bold]{job['id']}[/bold] accepted: {job.get('status')}")
        if watch:
            _watch(client, job["id"], timeout)


@train_app.command("status")
def status(
    job_id: str,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Show a job and its experiment run."""
    with client_for(gateway, api_key) as client, answered(gateway):
        _print_state(client.training_job(job_id), client.experiment_run(job_id))


def _watch(client: GatewayClient, job_id: str, timeout_s: float) -> None:
    """Print every change of the job and its run until the job ends or the time is up."""
    last: tuple[Any, ...] = ()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.training_job(job_id)
        run = client.experiment_run(job_id)
        pipeline = job.get("pipeline") or {}
        progress = pipeline.get("progress") or {}
        state = (
            job.get("status"),
            run and run.get("status"),
            run and run.get("runId"),
            progress.get("done"),
        )
        if state != last:
            _print_state(job, run)
            last = state
        if job.get("status") in _TERMINAL:
            return
        time.sleep(1.0)
    console.print("[yellow]stopped watching (timeout); the job goes on[/yellow]")


def _print_state(job: dict[str, Any], run: dict[str, Any] | None) -> None:
    line = f"job {job.get('id')}: [bold]{job.get('status')}[/bold]"
    progress = (job.get("pipeline") or {}).get("progress") or {}
    if progress.get("total"):
        line += f" | stages {progress.get('done') or 0}/{progress['total']}"
    if run:
        line += f" | run {run.get('runId')} ({run.get('backend')}): {run.get('status')}"
        if run.get("trackingUrl"):
            line += f" {run['trackingUrl']}"
    console.print(line)
    if job.get("reason") and job.get("status") != "Succeeded":
        console.print(f"  {job['reason']}", markup=False, highlight=False)
    if model := job.get("registeredModel"):
        console.print(
            f"  model [bold]{model.get('name')}[/bold] version {model.get('version')}: "
            f"{model.get('storageUri')}"
        )
