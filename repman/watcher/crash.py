"""Crash records: every server's position when the master was replaced.

Rejoin compares a returning old master with the position recorded here: what it
holds beyond that was never seen by the new master.
"""

from __future__ import annotations

from repman.db import ServerAddress
from repman.topology import ServerState
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.primary import deposed_pair, recorded_master
from repman.watcher.state_store import ClusterState, CrashRecord, StateStore, now


def positions(states: dict[ServerAddress, ServerState]) -> dict[str, str]:
    out: dict[str, str] = {}
    for addr, s in states.items():
        if s.reachable:
            out[addr.url] = s.gtid_binlog_pos if s.replica is None else s.gtid_current_pos
    return out


def record(store: StateStore, kind: str, old: ServerAddress, new: ServerAddress,
           states: dict[ServerAddress, ServerState], failover_pos: str,
           extra: dict[str, str] | None = None, event_scheduler: bool = False,
           finished: bool = True) -> CrashRecord:
    """Append a crash record; a failover also counts against ``failover-limit``.

    ``event_scheduler``: it ran on the old master, so the new one must run it too.
    ``finished=False``: written before the promotion; ``mark_finished`` once the new master
    takes writes. A watcher killed in between leaves it unfinished, and the next one opens
    the promoted master's writes instead of failing over again.
    """
    pos = positions(states)
    pos.update(extra or {})
    rec = CrashRecord(kind=kind, at=now(), old_master=old.url, new_master=new.url, positions=pos,
                      failover_pos=failover_pos, event_scheduler=event_scheduler, finished=finished)
    store.record_crash(rec, count_failover=(kind == "failover"))
    return rec


def mark_finished(store: StateStore, new: ServerAddress) -> None:
    """The latest record's promotion of ``new`` is complete: it takes writes."""
    def change(state: ClusterState) -> None:
        if state.crashes and state.crashes[-1].new_master == new.url:
            state.crashes[-1].finished = True
    store.update(change)


def unfinished_promotion(latest: CrashRecord | None, master: ServerAddress | None) -> bool:
    """``master`` was promoted by the latest failover, which stopped before opening its writes."""
    return latest is not None and not latest.finished and master is not None and latest.new_master == master.url


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
    """The latest record's new master while it is a writable non-replica (``primary.recorded_master``)."""
    return recorded_master(cfg.servers, latest, states)


def deposed_by_failover(cfg: ClusterConfig, latest: CrashRecord | None,
                        states: dict[ServerAddress, ServerState]) -> tuple[ServerAddress, ServerAddress] | None:
    """(old, new) masters of the latest failover while the new one is no replica (``primary.deposed_pair``)."""
    return deposed_pair(cfg.servers, latest, states)


def scheduler_was_on(store: StateStore) -> bool:
    """Whether the master ran the event scheduler, as last seen by the monitor or recorded."""
    state = store.load()
    if state.master_event_scheduler is not None:
        return state.master_event_scheduler
    return bool(state.crashes and state.crashes[-1].event_scheduler)
