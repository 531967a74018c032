"""``python -m llmops_gateway [serve|migrate]``: run the API (default) or only migrate the DB."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from llmops_gateway.app import ConfigurationError, create_app
from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.session import build_engine
from llmops_shared.logging import configure_logging

SHUTDOWN_GRACE_S = 10
"""How long requests in flight may finish once the gateway is told to stop."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmops_gateway", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=("serve", "migrate"),
        help="serve: run the REST API (default); migrate: upgrade the database to head and exit",
    )
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    if args.command == "migrate":
        engine = build_engine(settings.sqlalchemy_url())
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return 0
    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    # Open console streams (Server-Sent Events) would hold the shutdown up to their minute;
    # after this grace they are cut (the browser reconnects to another replica) and the
    # lifespan drains the status consumer within the pod's termination grace.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
