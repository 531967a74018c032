"""``llmops up``: run the local stack until Ctrl-C (see :mod:`llmops_cli.stack`)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from llmops_cli.stack import Stack, StackError, StackOptions


def up(
    data_dir: Annotated[Path, typer.Option(help="state of the local stack")] = Path(".llmops"),
    gateway_port: Annotated[int, typer.Option(help="gateway HTTP port")] = 8000,
    mlflow_port: Annotated[int, typer.Option(help="MLflow server port")] = 5000,
) -> None:
    """Start Redis, MLflow, the gateway and every worker; Ctrl-C stops them all."""
    console = Console()
    options = StackOptions(data_dir=data_dir, gateway_port=gateway_port, mlflow_port=mlflow_port)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await Stack(options, console).run(stop)

    try:
        code = asyncio.run(main())
    except StackError as exc:
        console.print(f"[bold red]the stack could not start:[/bold red] {exc}")
        raise typer.Exit(1) from exc
    raise typer.Exit(code)
