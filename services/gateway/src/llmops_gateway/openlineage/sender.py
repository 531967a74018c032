"""The ``openlineage-python`` client that posts the events: HTTP transport, configured from the
gateway's settings only.

* **No retries inside the client**: its HTTP transport retries 5xx answers by default (five
  times, with urllib3's backoff), which would hide failures from the outbox and hold the
  emitter's thread; here every failed request is one failed attempt of the row, counted,
  logged and retried with the outbox's own backoff.
* **Only the settings configure it**: the transport is built here and handed to the client, so
  an ``openlineage.yml`` or ``OPENLINEAGE__TRANSPORT__*`` variable does not redirect the events.
  The client still reads its other configuration (filters, tags, environment facets) as
  documented upstream, and ``OPENLINEAGE_DISABLED=true`` turns its transport into a no-op,
  which :func:`lineage_client` reports so that the app does not start the emitter: the rows
  stay queued rather than being marked sent. The source-code-location facet (the git remote of
  the working directory) is off.
* **Known upstream side effect**: when ``OPENLINEAGE_URL`` is in the process environment (how
  the gateway is usually configured), the client's constructor copies it, and the API key, into
  ``OPENLINEAGE__TRANSPORT__TRANSPORTS__DEFAULT_HTTP__*`` variables of this process. Nothing
  reads them here (the transport is explicit), and they hold nothing the environment did not.
"""

from __future__ import annotations

from openlineage.client import OpenLineageClient
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)
from openlineage.client.transport.noop import NoopTransport

from llmops_gateway.config import GatewaySettings

_CLIENT_CONFIG = {"facets": {"source_code_location": {"disabled": True}}}


def lineage_client(settings: GatewaySettings) -> OpenLineageClient | None:
    """The client posting to ``OPENLINEAGE_URL``; None when the URL is unset or the client is
    disabled by ``OPENLINEAGE_DISABLED``. No request is made yet."""
    if settings.openlineage_url is None:
        return None
    key = settings.openlineage_api_key
    auth = (
        TokenProvider({})
        if key is None
        else ApiKeyTokenProvider({"apiKey": key.get_secret_value()})
    )
    transport = HttpTransport(
        HttpConfig(
            url=settings.openlineage_url,
            endpoint=settings.openlineage_endpoint,
            timeout=settings.openlineage_timeout_s,
            auth=auth,
            retry={"total": 0},
        )
    )
    client = OpenLineageClient(transport=transport, config=_CLIENT_CONFIG)
    if client.transport.kind == NoopTransport.kind:
        client.close()
        return None
    return client
