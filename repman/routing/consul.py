"""Consul router: services ``write_<cluster>`` (the primary) and ``read_<cluster>`` (replicas).

Clients resolve ``write_<cluster>.service.consul`` (or query the catalog) instead of
talking to a proxy. Each apply reads the agent's services and only registers or
deregisters what differs, so an unchanged cluster costs one GET.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from repman.db import ServerAddress
from repman.routing.base import RoutingError, Topology
from repman.routing.endpoints import endpoint
from repman.routing.http import request
from repman.routing.names import server_name
from repman.routing.settings import cluster_name


class ConsulRouter:
    def __init__(self, agent: ServerAddress, cluster: str, token: str = "", timeout: float = 2.0) -> None:
        self.name = f"consul:{agent.url}"
        self.base = f"http://{agent.url}/v1/agent"
        self.cluster = cluster
        self.write_service = f"write_{cluster}"
        self.read_service = f"read_{cluster}"
        self.headers = {"X-Consul-Token": token} if token else {}
        self.timeout = timeout

    @classmethod
    def from_config(cls, cfg: Any, agent: str) -> ConsulRouter:
        return cls(endpoint(agent, 8500, "registry-servers"), cluster_name(cfg),
                   cfg.text("registry-consul-token"), cfg.seconds("proxy-timeout"))

    def desired(self, topology: Topology) -> dict[str, dict[str, Any]]:
        """Service definitions by ID, exactly as sent to ``/v1/agent/service/register``."""
        out: dict[str, dict[str, Any]] = {}
        if topology.primary is not None:
            out[self.write_service] = self._definition(self.write_service, self.write_service,
                                                       topology.primary, "master")
        for server in sorted(set(topology.replicas) - {topology.primary}):
            sid = f"{self.read_service}_{server_name(server)}"
            out[sid] = self._definition(sid, self.read_service, server, "slave")
        return out

    def _definition(self, sid: str, name: str, server: ServerAddress, role: str) -> dict[str, Any]:
        return {"ID": sid, "Name": name, "Address": server.host, "Port": server.port,
                "Tags": ["repman", self.cluster, role], "Meta": {"cluster": self.cluster, "role": role}}

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        resp = request(method, self.base + path, body=body, headers=self.headers, timeout=self.timeout)
        if resp.status == 403:
            raise RoutingError(f"Consul {self.base}: permission denied (registry-consul-token)")
        if resp.status >= 400:
            raise RoutingError(f"Consul {method} {path}: HTTP {resp.status}: {resp.error_detail()}")
        return resp.body

    @staticmethod
    def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
        return (current.get("Service") == wanted["Name"] and current.get("Address") == wanted["Address"]
                and current.get("Port") == wanted["Port"]
                and sorted(current.get("Tags") or []) == sorted(wanted["Tags"])
                and (current.get("Meta") or {}) == wanted["Meta"])

    def apply(self, topology: Topology) -> None:
        services = self._call("GET", "/services") or {}
        if not isinstance(services, dict):
            raise RoutingError(f"Consul {self.base}: unexpected answer to GET /services")
        ours = {sid: svc for sid, svc in services.items()
                if isinstance(svc, dict) and svc.get("Service") in (self.write_service, self.read_service)}
        wanted = self.desired(topology)
        # Deregister first: a client must never find the old primary under write_<cluster>.
        for sid in sorted(set(ours) - set(wanted)):
            self._call("PUT", "/service/deregister/" + urllib.parse.quote(sid, safe=""))
        for sid, definition in wanted.items():
            if sid not in ours or not self._same(ours[sid], definition):
                self._call("PUT", "/service/register", definition)
