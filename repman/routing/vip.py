"""VIP moves through ``failover-vip-script``, run as a router so a failure is retried.

The script runs when the primary differs from the one it last moved the VIP to
(including the first call after the watcher starts); a non-zero exit is a routing
failure, so ``notify`` reports it and the next tick runs the script again.
"""

from __future__ import annotations

from typing import Any

from repman.db import ServerAddress
from repman.routing.base import RoutingError, Topology
from repman.routing.scripts import run_vip_script


class VipScriptRouter:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.name = "failover-vip-script"
        # notify waits about 3x this before reporting "still running"; the script itself
        # may run up to failover-script-timeout in the background.
        self.timeout = cfg.seconds("proxy-timeout")
        self.current: ServerAddress | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> VipScriptRouter:
        return cls(cfg)

    def apply(self, topology: Topology) -> None:
        if topology.primary is None or topology.primary == self.current:
            return
        old = self.current or topology.old_primary
        result = run_vip_script(self.cfg, old, topology.primary, topology.reason)
        if result is not None and not result.ok:
            raise RoutingError(result.describe())
        self.current = topology.primary
