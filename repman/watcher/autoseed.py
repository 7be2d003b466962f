"""``autoseed``: the monitor re-seeds a replica whose replication cannot continue.

Why: a replica stopped by error 1236 (its master purged the binlogs it still
needs) never recovers by itself; replication-manager's ``autoseed`` rebuilds it.
The copy is repman/seeding.py's physical seeding, run under the cluster's
operation lock like any other operation.
"""

from __future__ import annotations

from typing import Callable, Sequence

from repman.db import ServerAddress
from repman.errors import RepmanError
from repman.routing.base import Router
from repman.seeding import reseed_member
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.result import OperationResult
from repman.watcher.state_store import StateStore


def autoseed(cfg: ClusterConfig, store: StateStore, server: ServerAddress, log: Callable[[str], None],
             routers: Sequence[Router] = ()) -> OperationResult:
    try:
        result = reseed_member(cfg, server, progress=log)
    except RepmanError as exc:
        return OperationResult(False, f"autoseed of {server} failed: {exc}", kind="autoseed")
    return OperationResult(True, f"autoseed: {server} re-seeded from {result.source} at {result.gtid} "
                                 f"({result.bytes_copied / 2**20:.0f} MiB) and replicating", kind="autoseed")
