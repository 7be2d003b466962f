"""On-premise backend: existing hosts reached over SSH, one node per host (``onpremise-hosts``).

No agent: each node is an ``SshNode`` dynamic resource whose provider logs in with
the key or password it reads from the stack's secret config and does the work with
``repman.backends.onpremise``. The deploying machine reaches the nodes' SQL ports,
so the cluster's own bootstrap resource wires replication.
"""

from __future__ import annotations

import pulumi

from components.backends.base import Backend, ClusterSecrets, NodeResources
from components.providers.ssh_node import SshNode, SshNodeArgs
from repman.backends.onpremise import node_specs_from_spec, ssh_auth_from_spec
from repman.spec import ClusterSpec, NodeSpec


class OnPremiseBackend(Backend):
    name = "onpremise"

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.auth = ssh_auth_from_spec(spec)          # config errors surface before any resource
        self.node_specs = {n.server_id: n for n in node_specs_from_spec(spec)}

    def create_node(
        self, node: NodeSpec, secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> NodeResources:
        s = self.node_specs[node.server_id]
        res = SshNode(
            f"{node.name}-host",
            SshNodeArgs(
                host=s.host, node_name=s.node_name, server_id=s.server_id, port=s.port, plan=s.plan,
                tags=s.tags, base_dir=s.base_dir, admin_user=secrets.admin_user,
                admin_password=secrets.admin_password, ssh_user=self.auth.user, ssh_port=self.auth.port,
                known_hosts=self.auth.known_hosts, strict_host_key_checking=self.auth.strict_host_key_checking,
                connect_timeout=self.auth.connect_timeout, service_user=s.service_user,
                install_packages=s.install_packages, check_resources=s.check_resources,
                keep_data=self.spec.keep_data_on_delete, db_settings=s.db_settings or None,
            ),
            pulumi.ResourceOptions(parent=parent, protect=bool(self.spec.values.get("prov-protect", True))),
        )
        # What bootstrap needs to seed this node (or copy from it) over SSH; no secret in it.
        spec_fields = {k: v for k, v in s.as_dict().items() if k != "admin_password"}
        seed = pulumi.Output.all(res.state).apply(lambda st: {
            "address": f"{s.host}:{s.port}", "spec": spec_fields, "state": st[0],
            "ssh": {"ssh_user": self.auth.user, "ssh_port": self.auth.port, "known_hosts": self.auth.known_hosts,
                    "strict_host_key_checking": self.auth.strict_host_key_checking,
                    "connect_timeout": self.auth.connect_timeout}})
        return NodeResources(host=s.host, port=s.port, instance=res.instance, resources=[res],
                             outputs={"ssh_host": s.host, "base_dir": s.base_dir, "seed": seed})

    def describe(self) -> dict[str, object]:
        return {"orchestrator": self.name, "hosts": [n.host for n in self.node_specs.values()],
                "ssh_user": self.auth.user, "strict_host_key_checking": self.auth.strict_host_key_checking}

    def salvage_settings(self) -> dict[str, object]:
        """Binlogs are read and a frozen master is killed over SSH as the deploying user; the watcher's
        host needs that user's key."""
        return {
            "failover-salvage-binlog-dirs": [f"{s.host}:{s.port}={s.base_dir}/data" for s in self.node_specs.values()],
            "failover-salvage-ssh-user": self.auth.user,
            "failover-salvage-ssh-options": f"-p {int(self.auth.port)}",
            # A frozen mariadbd on a live host is killed over SSH before a promotion; its
            # supervisor restarts it read-only (the readonly tag), and rejoin takes it back.
            "failover-fence-pid-files": [f"{s.host}:{s.port}={s.run_dir}/mariadbd.pid"
                                         for s in self.node_specs.values()],
            "failover-fence-ssh-user": self.auth.user,
            "failover-fence-ssh-options": f"-p {int(self.auth.port)}",
        }


def create_backend(spec: ClusterSpec) -> OnPremiseBackend:
    return OnPremiseBackend(spec)
