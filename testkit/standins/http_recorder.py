"""Recording stand-in for HTTP APIs that cannot run here (MaxScale REST API, Consul agent).

It records every request (method, path with query, selected headers, JSON body) and
answers from a handler the test supplies; it executes nothing itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from testkit.standins.json_http import JsonHandler, StandinServer

RECORDED_HEADERS = ("Authorization", "X-Consul-Token", "Content-Type", "X-Vault-Token")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Handler = Callable[[Request], tuple[int, Any]]


class RecordingHTTPServer(StandinServer):
    """Records every request and answers it through ``handler`` (default: 200, empty)."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or (lambda req: (200, None))
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        super().__init__(_Recorded)

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        with self._lock:
            return [(r.method, r.path) for r in self.requests if method is None or r.method == method]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


class _Recorded(JsonHandler):
    server: RecordingHTTPServer

    def _any(self) -> None:
        req = Request(self.command, self.path,
                      {h: self.headers[h] for h in RECORDED_HEADERS if h in self.headers}, self._body())
        with self.server._lock:
            self.server.requests.append(req)
        status, answer = self.server.handler(req)
        self._reply(status, answer)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any
