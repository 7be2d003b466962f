"""Recording stand-in for HTTP APIs that cannot run here (MaxScale REST API, Consul agent).

It records every request (method, path with query, selected headers, JSON body) and
answers from a handler the test supplies; it executes nothing itself.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

RECORDED_HEADERS = ("Authorization", "X-Consul-Token", "Content-Type", "X-Vault-Token")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Handler = Callable[[Request], tuple[int, Any]]


class RecordingHTTPServer:
    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or (lambda req: (200, None))
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        outer = self

        class _H(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                req = Request(self.command, self.path,
                              {h: self.headers[h] for h in RECORDED_HEADERS if h in self.headers}, body)
                with outer._lock:
                    outer.requests.append(req)
                status, answer = outer.handler(req)
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass   # a client (an HAProxy check) closing early is not the test's business

        self._server = _Server(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        with self._lock:
            return [(r.method, r.path) for r in self.requests if method is None or r.method == method]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
