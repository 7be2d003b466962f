"""MariaDB MaxScale router: sets server states over the REST API, or checks its monitor agrees.

Two modes, chosen by ``maxscale-monitor-follow``:
- driven (default): the servers are not monitored by MaxScale; the watcher sets
  ``master``/``slave``/``running``/``drain`` on them so readwritesplit follows at once.
- follow: MaxScale's own mariadbmon watches the servers (a monitored server refuses manual
  master/slave states); the router only checks that MaxScale sees the new primary as
  Master and reports "not yet" until it does, so the watcher retries on its next tick.
Servers are matched by address and port, so MaxScale's own server names do not matter.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from repman.db import ServerAddress
from repman.routing.base import RoutingError, Topology
from repman.routing.endpoints import endpoint
from repman.routing.http import Response, basic_auth, request


@dataclass(frozen=True)
class MaxScaleServer:
    name: str
    address: ServerAddress | None
    states: frozenset[str]       # lower-case words of MaxScale's state string

    @property
    def master(self) -> bool:
        return "master" in self.states

    @property
    def slave(self) -> bool:
        return "slave" in self.states

    @property
    def running(self) -> bool:
        return "running" in self.states

    @property
    def draining(self) -> bool:
        return any(s.startswith("drain") for s in self.states)

    @property
    def maintenance(self) -> bool:
        return "maintenance" in self.states


def parse_servers(body: Any) -> list[MaxScaleServer]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise RoutingError("MaxScale: unexpected answer to GET /v1/servers")
    out = []
    for item in body["data"]:
        attrs = item.get("attributes", {})
        params = attrs.get("parameters", {})
        address = None
        if params.get("address") and params.get("port"):
            address = ServerAddress(str(params["address"]), int(params["port"]))
        words = {w.strip().lower() for w in str(attrs.get("state", "")).split(",") if w.strip()}
        out.append(MaxScaleServer(str(item["id"]), address, frozenset(words)))
    return out


class MaxScaleRouter:
    def __init__(self, api: ServerAddress, user: str, password: str, monitor_follow: bool = False,
                 timeout: float = 2.0) -> None:
        self.name = f"maxscale:{api.url}"
        self.base = f"http://{api.url}/v1"
        self.auth = basic_auth(user, password)
        self.monitor_follow = monitor_follow
        self.timeout = timeout

    @classmethod
    def from_config(cls, cfg: Any, host: str) -> MaxScaleRouter:
        api = endpoint(host, cfg.integer("maxscale-api-port"), "maxscale-servers")
        return cls(api, cfg.text("maxscale-user"), cfg.text("maxscale-pass"),
                   cfg.flag("maxscale-monitor-follow"), cfg.seconds("proxy-timeout"))

    def _call(self, method: str, path: str) -> Response:
        resp = request(method, self.base + path, headers={"Authorization": self.auth}, timeout=self.timeout)
        if resp.status == 401:
            raise RoutingError(f"MaxScale {self.base}: authentication refused (maxscale-user/maxscale-pass)")
        if resp.status >= 400:
            raise RoutingError(f"MaxScale {method} {path}: HTTP {resp.status}: {resp.error_detail()}")
        return resp

    def servers(self) -> list[MaxScaleServer]:
        return parse_servers(self._call("GET", "/servers").body)

    def _state(self, server: MaxScaleServer, verb: str, state: str) -> None:
        name = urllib.parse.quote(server.name, safe="")
        self._call("PUT", f"/servers/{name}/{verb}?state={state}")

    def _drive(self, server: MaxScaleServer, role: str) -> None:
        """Bring one server to ``role`` (master | slave | drained) with the fewest calls."""
        if role in ("master", "slave"):
            if server.maintenance:
                self._state(server, "clear", "maintenance")
            if server.draining:
                self._state(server, "clear", "drain")
            other = "slave" if role == "master" else "master"
            if other in server.states:
                self._state(server, "clear", other)
            if role not in server.states:
                self._state(server, "set", role)
            if not server.running:
                self._state(server, "set", "running")
        else:
            for state in ("master", "slave"):
                if state in server.states:
                    self._state(server, "clear", state)
            if not server.draining:
                self._state(server, "set", "drain")

    def apply(self, topology: Topology) -> None:
        known = self.servers()
        by_address = {s.address: s for s in known if s.address is not None}
        if topology.primary is not None and topology.primary not in by_address:
            raise RoutingError(f"MaxScale {self.base}: no server with address {topology.primary}")
        if self.monitor_follow:
            if topology.primary is not None and not by_address[topology.primary].master:
                masters = [s.name for s in known if s.master] or ["none"]
                raise RoutingError(f"MaxScale's monitor still sees {', '.join(masters)} as master, "
                                   f"not {topology.primary}; checking again on the next tick")
            return
        # Demote first, so readwritesplit never sees two masters.
        for server in sorted(set(topology.replicas) - {topology.primary}):
            if server in by_address:
                self._drive(by_address[server], "slave")
        for server in sorted(set(topology.unhealthy) - set(topology.replicas) - {topology.primary}):
            if server in by_address:
                self._drive(by_address[server], "drained")
        placed = set(topology.replicas) | set(topology.unhealthy) | {topology.primary}
        for stale in known:
            if stale.master and stale.address not in placed:
                self._state(stale, "clear", "master")
        if topology.primary is not None:
            self._drive(by_address[topology.primary], "master")
