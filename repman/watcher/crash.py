"""Crash records: every server's position when the master was replaced.

Rejoin compares a returning old master with the position recorded here: what it
holds beyond that was never seen by the new master.
"""

from __future__ import annotations

from repman.db import ServerAddress
from repman.topology import ServerState
from repman.watcher.state_store import CrashRecord, StateStore, now


def positions(states: dict[ServerAddress, ServerState]) -> dict[str, str]:
    out: dict[str, str] = {}
    for addr, s in states.items():
        if s.reachable:
            out[addr.url] = s.gtid_binlog_pos if s.replica is None else s.gtid_current_pos
    return out


def record(store: StateStore, kind: str, old: ServerAddress, new: ServerAddress,
           states: dict[ServerAddress, ServerState], failover_pos: str,
           extra: dict[str, str] | None = None) -> CrashRecord:
    """Append a crash record; a failover also counts against ``failover-limit``."""
    pos = positions(states)
    pos.update(extra or {})
    rec = CrashRecord(kind=kind, at=now(), old_master=old.url, new_master=new.url, positions=pos,
                      failover_pos=failover_pos)
    store.record_crash(rec, count_failover=(kind == "failover"))
    return rec


def reference_for(store: StateStore, server: ServerAddress, was_master: bool) -> CrashRecord | None:
    """The record to compare a returning server with.

    A server that was a master when it left is compared with the last record where it
    was the old master: its binlog has not moved since. A replica is compared with the
    latest record: it may hold events of a master that died after it did.
    """
    crashes = store.load().crashes
    if was_master:
        own = [c for c in crashes if c.old_master == server.url]
        if own:
            return own[-1]
    return crashes[-1] if crashes else None
