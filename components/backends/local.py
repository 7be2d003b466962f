"""Local backend: every node is a mariadbd process on this host (the embedded default).

Datadirs live under ``<prov-state-dir>/<cluster>/db<i>``; nodes bind to
``prov-db-host`` on consecutive ports from ``db-servers-base-port``.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from repman.spec import ClusterSpec, NodeSpec

from components.backends.base import Backend, ClusterSecrets, NodeResources
from components.providers.local_node import LocalNode, LocalNodeArgs


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
            ),
            pulumi.ResourceOptions(parent=parent, protect=bool(self.spec.values.get("prov-protect", True))),
        )
        return NodeResources(
            host=res.host, port=res.port, instance=res.instance, resources=[res],
            outputs={"datadir": str(self.node_dir(node) / "data"), "pid": res.pid, "cnf_path": res.cnf_path},
        )

    def describe(self) -> dict[str, object]:
        return {"orchestrator": self.name, "state_dir": str(self.spec.state_dir / self.spec.name)}


def create_backend(spec: ClusterSpec) -> LocalBackend:
    return LocalBackend(spec)
