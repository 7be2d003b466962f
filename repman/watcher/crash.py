"""Crash records: every server's position when the master was replaced.

Rejoin compares a returning old master with the position recorded here: what it
holds beyond that was never seen by the new master.
"""

from __future__ import annotations

from repman.db import ServerAddress
from repman.errors import RepmanError
from repman.topology import ServerState
from repman.watcher.checks import member
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.state_store import CrashRecord, StateStore, now


def positions(states: dict[ServerAddress, ServerState]) -> dict[str, str]:
    out: dict[str, str] = {}
    for addr, s in states.items():
        if s.reachable:
            out[addr.url] = s.gtid_binlog_pos if s.replica is None else s.gtid_current_pos
    return out


def record(store: StateStore, kind: str, old: ServerAddress, new: ServerAddress,
           states: dict[ServerAddress, ServerState], failover_pos: str,
           extra: dict[str, str] | None = None, event_scheduler: bool = False) -> CrashRecord:
    """Append a crash record; a failover also counts against ``failover-limit``.

    ``event_scheduler``: it ran on the old master, so the new one must run it too.
    """
    pos = positions(states)
    pos.update(extra or {})
    rec = CrashRecord(kind=kind, at=now(), old_master=old.url, new_master=new.url, positions=pos,
                      failover_pos=failover_pos, event_scheduler=event_scheduler)
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


def recorded_primary(cfg: ClusterConfig, latest: CrashRecord | None,
                     states: dict[ServerAddress, ServerState]) -> ServerAddress | None:
    """The latest record's new master while it is reachable, writable and no replica.

    It outranks the replicas' votes: after a replica and then the master died, the
    replica restarts following the returning old master, which then looks like a
    root with a follower although the promoted server is the master.
    """
    if latest is None:
        return None
    try:
        recorded = member(cfg, ServerAddress.parse(latest.new_master))
    except RepmanError:
        return None
    st = states.get(recorded) if recorded is not None else None
    if st is not None and st.reachable and st.replica is None and not st.read_only:
        return recorded
    return None


def deposed_by_failover(cfg: ClusterConfig, latest: CrashRecord | None,
                        states: dict[ServerAddress, ServerState]) -> tuple[ServerAddress, ServerAddress] | None:
    """(old, new) masters of the latest failover while the new one is no replica of anything.

    Until an operation makes the promoted server a replica again (a switchover away
    from it), the deposed master is never the master, whatever it looks like: a
    frozen-then-resumed old master is writable, may still have a follower that was
    not re-pointed yet, and must not be reported or routed for even one tick.
    """
    if latest is None or latest.kind != "failover":
        return None
    try:
        old = member(cfg, ServerAddress.parse(latest.old_master))
        new = member(cfg, ServerAddress.parse(latest.new_master))
    except RepmanError:
        return None
    if old is None or new is None or old == new:
        return None
    st = states.get(new)
    if st is not None and st.reachable and st.replica is not None:
        return None
    return old, new


def scheduler_was_on(store: StateStore) -> bool:
    """Whether the master ran the event scheduler, as last seen by the monitor or recorded."""
    state = store.load()
    if state.master_event_scheduler is not None:
        return state.master_event_scheduler
    return bool(state.crashes and state.crashes[-1].event_scheduler)
