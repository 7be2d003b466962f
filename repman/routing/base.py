"""What every router (HAProxy, ProxySQL, MaxScale, Consul, Spider...) is told."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from repman.db import ServerAddress
from repman.errors import RepmanError


class RoutingError(RepmanError):
    """A proxy could not be updated; reported and retried, never blocking a failover."""


@dataclass(frozen=True)
class Topology:
    """The routing-relevant view of a cluster after a change (or on a monitoring tick)."""

    cluster: str
    primary: ServerAddress | None
    replicas: tuple[ServerAddress, ...] = ()       # healthy replicas, fit for reads
    unhealthy: tuple[ServerAddress, ...] = ()      # lagging, broken or failed: drained
    old_primary: ServerAddress | None = None
    reason: str = "monitor"                        # "switchover" | "failover" | "monitor" | "rejoin"
    servers: tuple[ServerAddress, ...] = field(default=())


class Router(Protocol):
    name: str

    def apply(self, topology: Topology) -> None:
        """Make the proxy route writes to ``topology.primary`` and reads to the replicas."""
