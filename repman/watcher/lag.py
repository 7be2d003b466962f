"""Replication lag once the master is gone.

MariaDB reports ``Seconds_Behind_Master`` as NULL as soon as a replica's IO thread
loses the master, so a replica stuck far behind would look electable at the very
moment ``failover-max-slave-delay`` matters. The monitor keeps the readings of the
last tick the master answered (``StateStore.lag_seen``); election uses them for any
replica that still has received but unapplied transactions.
"""

from __future__ import annotations

from typing import Mapping

from repman.db import ServerAddress
from repman.gtid import GtidPosition
from repman.topology import ServerState


def lag_readings(states: Mapping[ServerAddress, ServerState], at: float) -> dict[str, list[float]]:
    """The replicas' current lag readings, as stored in ``lag_seen``."""
    return {
        addr.url: [float(s.replica.seconds_behind), at]
        for addr, s in states.items()
        if s.reachable and s.replica is not None and s.replica.seconds_behind is not None
    }


def fill_unknown_lag(states: Mapping[ServerAddress, ServerState], lag_seen: Mapping[str, list[float]]) -> None:
    """Give a NULL lag the last reading taken while the master answered, when that replica has
    not yet applied everything it received (having applied it all, it is not behind)."""
    for addr, state in states.items():
        rep = state.replica
        if not state.reachable or rep is None or rep.seconds_behind is not None:
            continue
        seen = lag_seen.get(addr.url)
        if not seen or seen[0] <= 0:
            continue
        received = GtidPosition.parse(rep.gtid_io_pos)
        if state.current_pos.contains(received):
            continue
        rep.seconds_behind = int(seen[0])
