"""A watcher with its HTTP API on a real Testbed, and a small HTTP client: the API and dashboard tests share them."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from repman.api.auth import hash_password
from repman.api.config import api_config
from repman.api.server import ApiServer
from repman.watcher.config import parse_config
from repman.watcher.loop import Watcher
from testkit.polling import wait_until
from testkit.watcherbed import cluster_section

USERS = {
    "ops": {"role": "operator", "password-hash": hash_password("ops-pass")},
    "eve": {"role": "viewer", "password-hash": hash_password("eve-pass")},
}


def call(url: str, method: str = "GET", user: tuple[str, str] | None = None, body: Any = None,
         headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None) -> tuple[int, dict, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=120, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


class Running:
    def __init__(self, bed, tmp_path, api: dict[str, Any], **keys: Any) -> None:
        self.bed = bed
        wc = parse_config({"clusters": {"c1": cluster_section(bed, tmp_path / "state", **keys)},
                           "api": {"api-port": 0, "api-users": USERS, **api}})
        self.watcher = Watcher(wc)
        self.server = ApiServer(api_config(wc), self.watcher)
        self.mon = self.watcher.monitors["c1"]

    def __enter__(self) -> Running:
        self.watcher.start()
        self.server.start()
        wait_until(lambda: self.mon.decision is not None and self.mon.decision.rule == "healthy", 30, "healthy")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()
        self.watcher.stop()

    def url(self, path: str) -> str:
        return self.server.url + path

    def wait_tick(self) -> None:
        n = self.mon.ticks
        wait_until(lambda: self.mon.ticks >= n + 2, 30, "two more ticks")
