"""The HTTP plumbing shared by the in-process TEST DOUBLES (Kubernetes, Argo, Hub, GitHub).

Each double is a small stdlib ``ThreadingHTTPServer`` on 127.0.0.1 with a free port, served by a
daemon thread and used as a context manager; what differs is only the wire protocol it speaks.
The lifecycle lives in :class:`HttpDouble` and the request/response chores (read the body, send
JSON with the right length, stay quiet on stderr) in :class:`DoubleHandler`, so a double is just
its protocol. None of this is a real server: it serves tests only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class HttpDouble:
    """Start/stop of a test double's HTTP server; subclasses say which handler serves it.

    ``url`` is ``""`` until :meth:`start` and ``http://127.0.0.1:<port>`` after; starting twice
    is a no-op, stopping a stopped double too.
    """

    def __init__(self) -> None:
        self.url = ""
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The request handler, bound to this double (see :func:`bound_handler`)."""
        raise NotImplementedError

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        httpd.daemon_threads = True
        self._httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        # a short poll interval so that stop() (and so each test) does not wait half a second
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bound_handler(
    handler: type[BaseHTTPRequestHandler], **attributes: object
) -> type[BaseHTTPRequestHandler]:
    """A subclass of ``handler`` with ``attributes`` set on the class.

    ``ThreadingHTTPServer`` instantiates the handler class itself, per request, so the only way
    to hand it the double is a class attribute; a fresh subclass per double keeps two doubles in
    one test apart.
    """
    return type(f"_Bound{handler.__name__}", (handler,), dict(attributes))


class DoubleHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 (the real clients pool connections), no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def read_body(self) -> bytes:
        """The request body (``b""`` without one); it must be read for keep-alive to work."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_body(
        self,
        status: int,
        data: bytes,
        *,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        head: bool = False,
    ) -> None:
        """Answer ``status`` with ``data``; for ``head`` the headers only (``Content-Length`` of
        the body a GET would get, as servers do)."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        self.send_response(status, phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def send_json(
        self,
        status: int,
        body: Any,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        head: bool = False,
    ) -> None:
        """Answer ``status`` with ``body`` as JSON."""
        self.send_body(
            status, json.dumps(body).encode(), content_type=content_type, headers=headers, head=head
        )
