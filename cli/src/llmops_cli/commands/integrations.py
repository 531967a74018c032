"""``llmops integrations``: the integration flags per environment, and what the workers run.

``list`` shows each area's flag (a run-time override from the gateway's ``integration_configs``
or the environment's default); ``set`` changes one, and the area's workers switch backend
without a redeploy; ``health`` shows what every worker reports it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from llmops_cli.commands.train import ApiKey, GatewayUrl, answered, client_for
from llmops_shared.events import IntegrationArea

console = Console()
integrations_app = typer.Typer(
    help="Integration flags per environment (switch backends without a redeploy).",
    no_args_is_help=True,
)


@integrations_app.command("list")
def list_configs(
    environment: Annotated[str | None, typer.Option(help="dev | stg | prod (default: all)")] = None,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Each area's flag per environment, and where it comes from."""
    with client_for(gateway, api_key) as client, answered(gateway):
        items = client.integration_configs(environment)
    table = Table(title="integration flags")
    for column in ("environment", "area", "enabled", "system", "source", "revision", "changed by"):
        table.add_column(column)
    for item in items:
        table.add_row(
            item["environment"], item["area"], str(item["enabled"]).lower(), item["system"],
            item["source"], str(item["revision"]), item.get("changedBy") or "",
        )  # fmt: skip
    console.print(table)


@integrations_app.command("set")
def set_config(
    environment: Annotated[str, typer.Argument(help="dev | stg | prod")],
    area: Annotated[IntegrationArea, typer.Argument(help="the integration area")],
    enabled: Annotated[bool, typer.Option("--enabled/--disabled", help="the flag")],
    system: Annotated[str | None, typer.Option(help="system when enabled, e.g. mlflow")] = None,
    reason: Annotated[str | None, typer.Option(help="why, for the audit trail")] = None,
    changed_by: Annotated[str | None, typer.Option(envvar="USER", help="who")] = None,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Change one area's flag; its workers switch backend within seconds."""
    body = {"enabled": enabled, "system": system, "reason": reason, "changedBy": changed_by}
    with client_for(gateway, api_key) as client, answered(gateway):
        result = client.set_integration_config(
            environment, area.value, {k: v for k, v in body.items() if v is not None}
        )
    state = "enabled" if result["enabled"] else "disabled (built-in fallback)"
    if result["changed"]:
        console.print(
            f"{environment}/{area.value}: {state} on {result['system']} "
            f"(revision {result['revision']}); {result['service']} workers switch within seconds"
        )
    else:
        console.print(f"{environment}/{area.value}: already {state}; nothing changed")


@integrations_app.command("health")
def health(
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """What each integration's workers report they run (``/health/integrations``)."""
    with client_for(gateway, api_key) as client, answered(gateway):
        report = client.integrations_health()
    console.print(f"status: [bold]{report.get('status')}[/bold]  environment: "
                  f"{report.get('environment')}")  # fmt: skip
    if report.get("configsError"):
        console.print(f"[yellow]{report['configsError']}[/yellow]")
    table = Table()
    for column in ("area", "status", "configured", "workers run", "workers", "problems"):
        table.add_column(column)
    for name, area in (report.get("integrations") or {}).items():
        configured = area.get("configured") or {}
        wanted = (
            f"{str(configured['enabled']).lower()} ({configured['source']})" if configured else ""
        )
        running = f"{area.get('backend') or ''} enabled={str(area.get('enabled')).lower()}"
        table.add_row(
            name, area["status"], wanted, running, str(area.get("workersAlive")),
            "; ".join(area.get("problems") or []),
        )  # fmt: skip
    console.print(table)
