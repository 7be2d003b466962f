"""SlapOS backend: the cluster requested from a SlapOS master, databases as shared instances.

The deployer sends one request (the root repman instance, seed 003's parameters);
SlapOS allocates the MariaDB instances on the computers named per node, deploys
and bootstraps them, and publishes addresses as connection parameters. Each
``slapos-databases`` entry is a shared instance of the cluster whose database and
REQUIRE SSL user are made by the cluster and whose parameters only its requester sees.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import pulumi

from components.backends.base import Backend, ClusterSecrets, NodeResources
from components.providers.slapos_request import SlapOSRequest, SlapOSRequestArgs
from repman.backends.slapos import (
    cluster_parameters,
    root_title,
    settings_from_spec,
    shared_databases_from_spec,
)
from repman.backends.slapos_instance import node_title
from repman.spec import ClusterSpec, NodeSpec

DB_PORT = 3306


class SlapOSBackend(Backend):
    name = "slapos"
    bootstraps_from_deployer = False   # the root instance wires replication inside SlapOS

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.settings = settings_from_spec(spec)
        self.databases = shared_databases_from_spec(spec)

    def create_node(
        self, node: NodeSpec, secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> NodeResources:
        # Addresses are allocated by SlapOS; the instance title stands for the node until published.
        title = node_title(self.spec.name, node.index - 1)
        return NodeResources(host=title, port=DB_PORT, instance=title,
                             outputs={"computer_guid": self.settings.computer_guids[node.index - 1]})

    def _args(self, title: str, **kw: Any) -> SlapOSRequestArgs:
        s = self.settings
        return SlapOSRequestArgs(master_url=s.master_url, software_release=s.software_release,
                                 software_type=s.software_type, computer_guid=s.repman_computer_guid,
                                 title=title, cluster=self.spec.name, key_file=s.key_file,
                                 cert_file=s.cert_file, **kw)

    def create_cluster_resources(
        self, nodes: Sequence[NodeResources], secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> list[pulumi.Resource]:
        cname = self.spec.name
        params = json.dumps(cluster_parameters(self.spec, self.settings), sort_keys=True)
        root = SlapOSRequest(f"{cname}-slapos-cluster", self._args(root_title(cname), parameters=params),
                             pulumi.ResourceOptions(parent=parent,     # the cluster's instance tree: its data
                                                    protect=bool(self.spec.values.get("prov-protect", True))))
        made: list[pulumi.Resource] = [root]
        for db in self.databases:
            # One at a time: shared requests all rewrite the root's list of hosted instances
            # (slapproxy does so without locking, so parallel requests lose each other).
            made.append(SlapOSRequest(
                f"{cname}-database-{db.name}",
                self._args(db.title, shared=True, database={"name": db.name, "user": db.user}),
                pulumi.ResourceOptions(parent=parent, depends_on=[made[-1]]),
            ))
        return made

    def describe(self) -> dict[str, Any]:
        return {"orchestrator": self.name, "master_url": self.settings.master_url,
                "root_instance": root_title(self.spec.name),
                "computers": list(self.settings.computer_guids),
                "shared_databases": [d.name for d in self.databases]}


def create_backend(spec: ClusterSpec) -> SlapOSBackend:
    return SlapOSBackend(spec)
