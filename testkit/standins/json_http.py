"""The base of every HTTP stand-in in the tests: one server class, one handler class.

``StandinServer`` listens on a free port of 127.0.0.1 and serves from a daemon thread
(optionally TLS); ``JsonHandler`` keeps stderr quiet and answers JSON with its length.
The recorders (MaxScale, Consul, Vault, OpenSVC agent, Kubernetes API) and the small
one-off servers of single tests are all built on these two.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """A stand-in's handler: no access log on stderr, JSON replies with their length."""

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: Any, content_type: str = "application/json") -> None:
        """``body`` None answers empty; bytes or str go out as they are; anything else as JSON."""
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str) and content_type != "application/json":
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        self.send_response(code)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        """The request's body: JSON when it parses, else its text (None when empty)."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")


class StandinServer(ThreadingHTTPServer):
    """Serves ``handler`` on a free port of 127.0.0.1 from a daemon thread until ``close``."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass   # a client (an HAProxy check) closing early is not the test's business

    def close(self) -> None:
        self.shutdown()
        self.server_close()
