"""Who is the primary: the monitor's answer from server states and the latest crash record.

One home for the question, so the monitor, the facts and (later) the operations ask
the same function.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from repman.db import ServerAddress
from repman.topology import ServerState
from repman.watcher.election import same_server


def find_master(
    states: dict[ServerAddress, ServerState], servers: Sequence[ServerAddress],
    previous: ServerAddress | None, recorded: ServerAddress | None = None,
) -> ServerAddress | None:
    """The latest crash record's new master while it is a writable non-replica (``recorded``,
    from ``crash.recorded_primary``); else the server the reachable replicas follow; else the
    lone writable one; else the previous one."""
    if recorded is not None and recorded in servers:
        return recorded
    votes: Counter[ServerAddress] = Counter()
    for s in states.values():
        if s.reachable and s.replica is not None:
            target = next((a for a in servers if same_server(a, s.replica.master)), None)
            if target is not None and target != s.address:
                votes[target] += 1
    if votes:
        best = max(votes.values())
        leaders = sorted(a for a, n in votes.items() if n == best)
        return previous if previous in leaders else leaders[0]
    writable = [a for a in servers if (s := states.get(a)) and s.reachable and s.replica is None
                and not s.read_only]
    if len(writable) == 1:
        return writable[0]
    standalone = [a for a in servers if (s := states.get(a)) and s.reachable and s.replica is None]
    if previous in standalone or previous in writable:
        return previous
    if previous is None and len(standalone) == 1:
        return standalone[0]
    return previous


__all__ = ["find_master"]
