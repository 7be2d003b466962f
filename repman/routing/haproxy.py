"""HAProxy router: moves the write backend's ``leader`` and drains replicas over the runtime API.

No reload is ever needed, so read connections on healthy replicas are never dropped.
Write sessions still open on the old primary are shut when the leader moves: after a
switchover they could only fail (the old primary is read-only), and cutting them makes
clients reconnect through the proxy to the new primary at once.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from repman.db import ServerAddress
from repman.routing.base import RoutingError, Topology
from repman.routing.haproxy_runtime import RuntimeAPI, ServerState
from repman.routing.names import haproxy_server_name

LEADER = "leader"


class HAProxyRouter:
    """One HAProxy instance, reached at ``endpoint`` (admin socket path or host:port)."""

    def __init__(
        self, endpoint: str, write_backend: str = "service_write", read_backend: str = "service_read",
        read_on_master: bool = False, timeout: float = 2.0,
    ) -> None:
        self.name = f"haproxy:{endpoint}"
        self.api = RuntimeAPI(endpoint, timeout)
        self.write_backend = write_backend
        self.read_backend = read_backend
        self.read_on_master = read_on_master
        self.timeout = timeout

    @classmethod
    def from_config(cls, cfg: Any, endpoint: str) -> HAProxyRouter:
        return cls(
            endpoint, cfg.text("haproxy-api-write-backend"), cfg.text("haproxy-api-read-backend"),
            cfg.flag("haproxy-read-on-master"), cfg.seconds("proxy-timeout"),
        )

    # -- writes ---------------------------------------------------------------------------
    def _route_writes(self, leader: ServerState, primary: ServerAddress | None) -> None:
        be = self.write_backend
        if primary is None:
            if not leader.maint:
                self.api.set_state(be, LEADER, "maint")
                self.api.shutdown_sessions(be, LEADER)
            return
        if leader.target != primary:
            # Stop new sessions, cut the old ones, move, reopen; the watcher has just checked
            # the new primary, so its health is forced up instead of waiting `rise` checks.
            self.api.set_state(be, LEADER, "maint")
            self.api.shutdown_sessions(be, LEADER)
            self.api.set_addr(be, LEADER, primary)
            self.api.set_state(be, LEADER, "ready")
            self.api.set_health(be, LEADER, "up")
        elif leader.maint or leader.drain:
            self.api.set_state(be, LEADER, "ready")
            if not leader.up:
                self.api.set_health(be, LEADER, "up")

    def _route_writes_per_node(self, rows: list[ServerState], primary: ServerAddress | None) -> None:
        """The http-check layout: one write slot per node; only the primary's is open."""
        be = self.write_backend
        for row in rows:
            if row.target != primary and not row.maint:
                self.api.set_state(be, row.name, "maint")
                self.api.shutdown_sessions(be, row.name)
        if primary is None:
            return
        primary_row = next((r for r in rows if r.target == primary), None)
        if primary_row is None:
            self.api.add_server(be, haproxy_server_name(primary), primary)
            primary_row = ServerState(be, haproxy_server_name(primary), primary.host, primary.port, 0, 0x01)
        if primary_row.maint or primary_row.drain:
            self.api.set_state(be, primary_row.name, "ready")
        if primary_row.maint or primary_row.drain or not primary_row.up:
            self.api.set_health(be, primary_row.name, "up")   # the watcher just saw it primary

    # -- reads ----------------------------------------------------------------------------
    def _desired_read_state(self, topology: Topology, server: ServerAddress) -> str:
        if server in topology.replicas:
            return "ready"
        if server == topology.primary:
            return "ready" if self.read_on_master and not topology.replicas else "drain"
        return "drain"   # unhealthy (lagging, broken, failed) or of unknown state

    def _route_reads(self, topology: Topology, rows: list[ServerState]) -> None:
        be = self.read_backend
        by_name = {r.name: r for r in rows}
        by_target = {r.target: r for r in rows}
        wanted: set[ServerAddress] = set(topology.servers) | set(topology.replicas) | set(topology.unhealthy)
        if topology.primary is not None:
            wanted.add(topology.primary)
        seen: set[str] = set()
        for server in sorted(wanted):
            row = by_name.get(haproxy_server_name(server)) or by_target.get(server)
            if row is None:
                self.api.add_server(be, haproxy_server_name(server), server)
                row = ServerState(be, haproxy_server_name(server), server.host, server.port, 0, 0x01)
            seen.add(row.name)
            desired = self._desired_read_state(topology, server)
            if desired == "ready" and (row.maint or row.drain):
                self.api.set_state(be, row.name, "ready")
            elif desired == "drain" and (row.maint or not row.drain):
                self.api.set_state(be, row.name, "drain")
        if topology.servers:
            for row in rows:
                if row.name not in seen and not row.maint:
                    self.api.set_state(be, row.name, "maint")   # no longer part of the cluster

    def apply(self, topology: Topology) -> None:
        rows = self.api.servers_state()
        write_rows = [r for r in rows if r.backend == self.write_backend]
        if not write_rows:
            raise RoutingError(f"HAProxy {self.api.endpoint}: no servers in backend {self.write_backend}")
        leader = next((r for r in write_rows if r.name == LEADER), None)
        primary = resolved(topology.primary)
        if leader is not None:
            self._route_writes(leader, primary)
        else:
            self._route_writes_per_node(write_rows, primary)
        read_rows = [r for r in rows if r.backend == self.read_backend]
        if read_rows:   # no read backend with the noreadwritesplit tag
            self._route_reads(topology, read_rows)
        self._verify(primary, leader is not None)

    def _verify(self, primary: ServerAddress | None, leader_layout: bool) -> None:
        """Read the state back: the watcher reports success only when HAProxy really moved."""
        if primary is None:
            return
        rows = self.api.servers_state(self.write_backend)
        open_rows = [r for r in rows if not r.maint and (r.name == LEADER or not leader_layout)]
        if [r.target for r in open_rows] != [primary]:
            raise RoutingError(f"HAProxy {self.api.endpoint}: writes not routed to {primary} "
                               f"(open: {', '.join(str(r.target) for r in open_rows) or 'none'})")

    def leader(self) -> ServerState | None:
        """The write backend's leader as HAProxy sees it now (for checks and benchmarks)."""
        return next((r for r in self.api.servers_state(self.write_backend) if r.name == LEADER), None)


def resolved(address: ServerAddress | None) -> ServerAddress | None:
    """The address with its host name resolved: HAProxy's runtime API takes and shows IP addresses
    only (containers are named, e.g. ``dkt-db1:3306`` on a Docker network). Unresolvable: unchanged."""
    if address is None:
        return None
    try:
        ipaddress.ip_address(address.host)
        return address
    except ValueError:
        pass
    try:
        info = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except OSError:
        return address
    return ServerAddress(str(info[0][4][0]), address.port)  # IPv4 and IPv6 sockaddrs start with the host

