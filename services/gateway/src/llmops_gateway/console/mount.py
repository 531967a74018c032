"""Add the console to the gateway app: its routes, its templates, its static files and the
live pages' wake-up (called by :func:`llmops_gateway.app.create_app`, the one wiring place)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from llmops_gateway.console import entities, lists, operations, signin
from llmops_gateway.console.live import Changes
from llmops_gateway.console.session import CONSOLE_PREFIX
from llmops_gateway.console.templating import STATIC_DIR, build_templates


def install_console(app: FastAPI) -> Changes:
    """Mount the console; returns what the status consumer notifies after each fold."""
    changes = Changes()
    app.state.console_templates = build_templates()
    app.mount(f"{CONSOLE_PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    for module in (signin, lists, entities, operations):
        app.include_router(module.router)
    return changes
