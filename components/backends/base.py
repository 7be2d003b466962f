"""The backend interface: where database nodes run, nothing about replication.

A backend turns each ``NodeSpec`` of a ``ClusterSpec`` into resources (children of
the node's ``DatabaseService``) and hands back the address the node is reached
at. The ``Cluster`` component only sees ``NodeResources``; adding SSH,
Kubernetes, Docker, OpenSVC or SlapOS means a new module here, nothing else.

A backend module (``components/backends/<module>.py``) exposes
``create_backend(spec: ClusterSpec) -> Backend``; ``components.backends.get_backend``
picks the module from ``prov-orchestrator``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import pulumi

from repman.db import Credential
from repman.spec import ClusterSpec, NodeSpec


@dataclass
class ClusterSecrets:
    """Credentials as Pulumi secrets: user names plain, passwords wrapped in ``Output.secret``."""

    admin_user: str
    admin_password: pulumi.Output
    replication_user: str
    replication_password: pulumi.Output
    monitoring_user: str | None = None
    monitoring_password: pulumi.Output | None = None

    @classmethod
    def from_spec(cls, spec: ClusterSpec) -> ClusterSecrets:
        mon: Credential | None = spec.monitoring
        return cls(
            admin_user=spec.admin.user,
            admin_password=pulumi.Output.secret(spec.admin.password),
            replication_user=spec.replication.user,
            replication_password=pulumi.Output.secret(spec.replication.password),
            monitoring_user=mon.user if mon else None,
            monitoring_password=pulumi.Output.secret(mon.password) if mon else None,
        )


@dataclass
class NodeResources:
    """What a backend gives back for one node.

    ``host``/``port`` are where the deploying machine (bootstrap, watcher) reaches
    the server; ``instance`` changes whenever the node's data is re-created (a
    replaced datadir or volume), so the bootstrap knows to re-attach it.
    """

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    instance: pulumi.Input[str]
    resources: list[pulumi.Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """One orchestrator (``prov-orchestrator``)."""

    name: ClassVar[str] = ""
    #: False when the deploying machine cannot reach the nodes' SQL ports (the
    #: cluster then skips its bootstrap resource and the backend bootstraps itself).
    bootstraps_from_deployer: ClassVar[bool] = True
    #: True when the backend can start the watcher next to the deployer (local processes).
    runs_local_watcher: ClassVar[bool] = False
    #: True when joining nodes can be seeded with a physical copy on the deployer (repman.seeding).
    seeds_local_nodes: ClassVar[bool] = False

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec

    @abstractmethod
    def create_node(
        self, node: NodeSpec, secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> NodeResources:
        """Create one node's resources, named ``f"{node.name}-<role>"`` with ``parent=parent``."""

    def create_cluster_resources(
        self, nodes: Sequence[NodeResources], secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> list[pulumi.Resource]:
        """Cluster-wide resources (services, namespaces...); none by default."""
        return []

    def describe(self) -> dict[str, Any]:
        """Backend facts exported as stack outputs (never secrets)."""
        return {"orchestrator": self.name}

    def salvage_settings(self) -> dict[str, Any]:
        """Watcher keys to reach a dead or frozen master's host: where its binlogs are
        (``failover-salvage-*``, so a failover of an asynchronous cluster can read its last
        writes) and how to kill it (``failover-fence-*``); none by default."""
        return {}

    def verified_tls_settings(self) -> dict[str, Any]:
        """Watcher keys turning on verified TLS when one cluster CA signs every node (ssl tag);
        none by default: a backend without a shared CA cannot verify replication."""
        return {}
