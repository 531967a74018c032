"""What authentication costs the gateway per request: API keys (configured and stored) and OIDC
JWTs, against the same request with authentication off (the raw ceiling of the run).

Two figures per credential:

* ``check_us``: the credential check alone (``Authenticator.authenticate``), in-process;
* ``request_us``: a whole ``GET /llm-ops/v1/catalog/models?limit=1`` through the ASGI app (one
  SQLite read), so ``request_us - ceiling`` is what a caller pays for the check, the role
  check and everything around them.

The OIDC issuer is a local JWKS server with an RSA key made for the run; keys are cached after
the first token, as in production. Prints a table; ``--json PATH`` writes the figures;
``--smoke`` runs a few requests (the test suite's run, so the script cannot rot).

    uv run python bench/auth.py [--requests 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from llmops_gateway.app import create_app
from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.migrate import upgrade
from llmops_gateway.domain.keys import create_key
from llmops_gateway.security.roles import EVERY_ENVIRONMENT, Role

CONFIGURED_KEY = "bench-configured-key-0123456789abcdef"
AUDIENCE = "llmops"
PATH = "/llm-ops/v1/catalog/models?limit=1"


@contextmanager
def issuer() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A JWKS endpoint on 127.0.0.1 publishing one RSA key made for this run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "bench", "alg": "RS256"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", key
    finally:
        server.shutdown()


def settings_for(data: Path, url: str, *, auth: bool) -> GatewaySettings:
    return GatewaySettings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{data / 'gateway.db'}",
        api_keys=[CONFIGURED_KEY] if auth else [],
        auth_disabled=not auth,
        oidc_issuer=url if auth else None,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=f"{url}/jwks",
        oidc_role_map={"ml-viewers": ["viewer"]},
        log_json=True,
        log_level="WARNING",
    )


async def per_request_us(app: Any, headers: dict[str, str], requests: int) -> float:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        for _ in range(min(50, requests)):  # warm-up: imports, JWKS fetch, caches
            assert (await client.get(PATH, headers=headers)).status_code == 200
        started = time.perf_counter()
        for _ in range(requests):
            await client.get(PATH, headers=headers)
        return (time.perf_counter() - started) / requests * 1e6


def check_us(app: Any, bearer: str, checks: int) -> float:
    authenticator = app.state.gateway.authenticator
    authenticator.authenticate(bearer)
    started = time.perf_counter()
    for _ in range(checks):
        authenticator.authenticate(bearer)
    return (time.perf_counter() - started) / checks * 1e6


def measure(requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, issuer() as (url, key):
        data = Path(tmp)
        open_app = create_app(settings_for(data, url, auth=False))
        upgrade(open_app.state.gateway.engine)
        app = create_app(settings_for(data, url, auth=True))
        _, stored = create_key(
            app.state.gateway.sessions,
            name="bench",
            grants={EVERY_ENVIRONMENT: Role.VIEWER},
            expires_at=None,
            created_by="bench",
        )
        now = int(time.time())
        claims = {"iss": url, "aud": AUDIENCE, "sub": "bench-user", "groups": ["ml-viewers"],
                  "iat": now, "exp": now + 3600}  # fmt: skip
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
        ceiling = asyncio.run(per_request_us(open_app, {}, requests))
        figures: dict[str, Any] = {"requests": requests, "ceiling_request_us": round(ceiling, 1)}
        for name, bearer in (("configured_key", CONFIGURED_KEY), ("stored_key", stored),
                             ("oidc_jwt", token)):  # fmt: skip
            request = asyncio.run(per_request_us(app, {"Authorization": f"Bearer {bearer}"},
                                                 requests))  # fmt: skip
            figures[name] = {
                "check_us": round(check_us(app, bearer, requests), 1),
                "request_us": round(request, 1),
                "overhead_us": round(request - ceiling, 1),
            }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--smoke", action="store_true", help="a few requests (the test suite)")
    args = parser.parse_args()
    requests = 20 if args.smoke else args.requests
    figures = measure(requests)
    figures["machine"] = f"{platform.node()} {platform.machine()} {platform.python_version()}"
    figures["date"] = datetime.now(UTC).date().isoformat()
    print(f"auth cost per request ({requests} sequential requests each, in-process ASGI)")
    print(f"{'credential':<16}{'check µs':>10}{'request µs':>12}{'overhead µs':>13}")
    print(f"{'none (ceiling)':<16}{'':>10}{figures['ceiling_request_us']:>12}{'':>13}")
    for name in ("configured_key", "stored_key", "oidc_jwt"):
        row = figures[name]
        print(f"{name:<16}{row['check_us']:>10}{row['request_us']:>12}{row['overhead_us']:>13}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
