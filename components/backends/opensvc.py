"""OpenSVC backend: one OpenSVC service per database node, through the cluster agent's API.

Each node is an ``OpenSvcService`` dynamic resource: cfg/sec objects and the service
definition rendered from ``templates/opensvc/mariadb.conf.j2``, provisioned and started
by the agents. Nodes are reached on their CNI address (the deployer must be on a
network that routes to it, as replication-manager itself is), so the cluster's own
bootstrap resource wires replication.
"""

from __future__ import annotations

import pulumi

from components.backends.base import Backend, ClusterSecrets, NodeResources
from components.providers.opensvc_service import OpenSvcService, OpenSvcServiceArgs
from repman.backends.opensvc import DB_PORT, settings_from_spec
from repman.spec import ClusterSpec, NodeSpec


class OpenSvcBackend(Backend):
    name = "opensvc"

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.settings = settings_from_spec(spec)

    def create_node(
        self, node: NodeSpec, secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> NodeResources:
        s, spec = self.settings, self.spec
        # Each service prefers its own agent node first, so the databases spread over the nodes.
        shift = (node.index - 1) % len(s.nodes) if s.nodes else 0
        preferred = list(s.nodes[shift:] + s.nodes[:shift])
        res = OpenSvcService(
            f"{node.name}-service",
            OpenSvcServiceArgs(
                api_url=s.api_url, namespace=s.namespace, cluster=spec.name, node_name=node.name,
                server_id=node.server_id, plan=spec.plan.name, tags=list(spec.db_tags), image=spec.db_image,
                network=s.network, nodes=preferred, ca_file=s.ca_file, keep_data=spec.keep_data_on_delete,
                admin_user=secrets.admin_user, admin_password=secrets.admin_password,
                db_settings=spec.db_settings() or None,
            ),
            pulumi.ResourceOptions(parent=parent, protect=bool(spec.values.get("prov-protect", True))),
        )
        return NodeResources(host=res.address, port=DB_PORT, instance=res.instance, resources=[res],
                             outputs={"opensvc_path": res.path})

    def describe(self) -> dict[str, object]:
        return {"orchestrator": self.name, "api_url": self.settings.api_url, "namespace": self.settings.namespace}


def create_backend(spec: ClusterSpec) -> OpenSvcBackend:
    return OpenSvcBackend(spec)
