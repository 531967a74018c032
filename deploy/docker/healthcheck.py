"""The image's HEALTHCHECK: GET /healthz (or the path given) of this container's service.

The port is the one the service listens on: ``PORT`` for the gateway (its REST API serves the
probes), ``HEALTH_PORT`` for a worker, else the service's default. Standard library only, so it
costs no import of the service. Exit 0 when the answer is 200, else 1.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

DEFAULT_PORTS = {
    "gateway": 8000,
    "tracking": 8081,
    "serving": 8082,
    "workflow": 8083,
    "registry": 8084,
    "versioning": 8085,
    "github-sync": 8086,
}
"""Each service's default port (``GatewaySettings.port``, the workers' ``health_port``)."""


def health_url(environ: Mapping[str, str], path: str = "/healthz") -> str:
    service = environ.get("LLMOPS_SERVICE", "")
    if service not in DEFAULT_PORTS:
        raise SystemExit(f"healthcheck: unknown LLMOPS_SERVICE {service!r}")
    variable = "PORT" if service == "gateway" else "HEALTH_PORT"
    port = environ.get(variable) or str(DEFAULT_PORTS[service])
    return f"http://127.0.0.1:{int(port)}{path}"


def main() -> int:
    url = health_url(os.environ, sys.argv[1] if len(sys.argv) > 1 else "/healthz")
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
