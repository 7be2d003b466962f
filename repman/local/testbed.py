"""A throw-away cluster of real local mariadbd nodes, for tests and benchmarks.

It uses the same node lifecycle and bootstrap as the local backend, so what the
tests prove is what ``pulumi up`` runs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from repman.bootstrap import BootstrapRequest, BootstrapResult, bootstrap
from repman.db import Credential, ServerAddress, connect
from repman.local.node import LocalNodeSpec, crash_node, create_node, delete_node, node_running, restart_node
from repman.local.ports import free_ports  # noqa: F401  (re-exported for tests)

ADMIN = Credential("repman", "admin-secret")
REPLICATION = Credential("repl", "repl-secret")
MONITORING = Credential("monitor", "monitor-secret")
DEFAULT_TAGS = ("gtidstrict", "row", "readonly", "noquerycache", "smallredolog", "nodurable")


@dataclass
class Testbed:
    __test__ = False  # not a pytest test class despite its name

    base: Path
    nodes: list[LocalNodeSpec] = field(default_factory=list)
    admin: Credential = ADMIN
    replication: Credential = REPLICATION
    monitoring: Credential = MONITORING

    @classmethod
    def create(
        cls, base: Path, count: int = 3, tags: Sequence[str] = DEFAULT_TAGS, plan: str = "x3.tiny",
        first_server_id: int = 1, ca_dir: Path | None = None,
    ) -> Testbed:
        bed = cls(base=base)
        try:
            for i, port in enumerate(free_ports(count)):
                spec = LocalNodeSpec(
                    base_dir=str(base / f"db{i + 1}"), server_id=first_server_id + i, port=port, plan=plan,
                    tags=list(tags), admin_user=ADMIN.user, admin_password=ADMIN.password,
                    ca_dir=str(ca_dir) if ca_dir else "",
                )
                bed.nodes.append(spec)
                create_node(spec)
        except BaseException:
            bed.destroy()  # never leave half a cluster running
            raise
        return bed

    @property
    def addresses(self) -> list[ServerAddress]:
        return [ServerAddress(n.host, n.port) for n in self.nodes]

    def node(self, address: ServerAddress) -> LocalNodeSpec:
        for n in self.nodes:
            if n.port == address.port and n.host == address.host:
                return n
        raise KeyError(address)

    def bootstrap(self, semisync: bool = False, preferred: ServerAddress | None = None) -> BootstrapResult:
        return bootstrap(BootstrapRequest(
            servers=self.addresses, admin=self.admin, replication=self.replication,
            monitoring=self.monitoring, preferred_master=preferred, semisync=semisync,
        ))

    def connect(self, address: ServerAddress, credential: Credential | None = None, **kw):
        return connect(address, credential or self.admin, **kw)

    def kill(self, address: ServerAddress) -> None:
        crash_node(self.node(address))

    def start(self, address: ServerAddress) -> None:
        restart_node(self.node(address))

    def running(self, address: ServerAddress) -> bool:
        return node_running(self.node(address))

    def destroy(self, keep_data: bool = False) -> None:
        for n in self.nodes:
            delete_node(n, keep_data=True)
        if not keep_data:
            shutil.rmtree(self.base, ignore_errors=True)
