"""Local backend: every node is a mariadbd process on this host (the embedded default).

Datadirs live under ``<prov-state-dir>/<cluster>/db<i>``; nodes bind to
``prov-db-host`` on consecutive ports from ``db-servers-base-port``.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from components.backends.base import Backend, ClusterSecrets, NodeResources
from components.providers.local_node import LocalNode, LocalNodeArgs
from repman.spec import ClusterSpec, NodeSpec


class LocalBackend(Backend):
    name = "local"
    runs_local_watcher = True
    seeds_local_nodes = True

    def node_dir(self, node: NodeSpec) -> Path:
        return self.spec.state_dir / self.spec.name / f"db{node.index}"

    def verified_tls_settings(self) -> dict[str, object]:
        """Local nodes share the cluster CA under prov-state-dir: verify replication and the watcher."""
        if "ssl" not in self.spec.db_tags:
            return {}
        return {"replication-use-ssl": True,
                "db-servers-tls-ca-cert": str(self.spec.state_dir / self.spec.name / "ca" / "ca.pem")}

    def create_node(
        self, node: NodeSpec, secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> NodeResources:
        res = LocalNode(
            f"{node.name}-process",
            LocalNodeArgs(
                base_dir=str(self.node_dir(node)), server_id=node.server_id, port=node.port,
                host=self.spec.db_host, plan=self.spec.plan.name, tags=list(self.spec.db_tags),
                admin_user=secrets.admin_user, admin_password=secrets.admin_password,
                keep_data=self.spec.keep_data_on_delete,
                ca_dir=str(self.spec.state_dir / self.spec.name / "ca"),
                defer_restart=True,  # the cluster's bootstrap resource restarts nodes in a rolling order
                restore=restore_inputs(self.spec),
                db_settings=self.spec.db_settings(),
            ),
            pulumi.ResourceOptions(parent=parent, protect=bool(self.spec.values.get("prov-protect", True))),
        )
        return NodeResources(
            host=res.host, port=res.port, instance=res.instance, resources=[res],
            outputs={"datadir": str(self.node_dir(node) / "data"), "pid": res.pid, "cnf_path": res.cnf_path},
        )

    def describe(self) -> dict[str, object]:
        return {"orchestrator": self.name, "state_dir": str(self.spec.state_dir / self.spec.name)}

    def salvage_settings(self) -> dict[str, object]:
        """The datadirs hold the binlogs and are on the watcher's host."""
        return {"failover-salvage-binlog-dirs": [
            f"{self.spec.db_host}:{n.port}={self.node_dir(n) / 'data'}" for n in self.spec.nodes]}


def restore_inputs(spec: ClusterSpec) -> dict[str, str] | None:
    """prov-db-restore-*: every node is restored to the same point, so they start identical."""
    source = spec.values.get("prov-db-restore-from")
    if not source:
        return None
    return {"from": str(source), "to_time": spec.values.get("prov-db-restore-to-time") or "",
            "to_gtid": spec.values.get("prov-db-restore-to-gtid") or ""}


def create_backend(spec: ClusterSpec) -> LocalBackend:
    return LocalBackend(spec)
