"""Watcher state that must survive a restart: failover counter, last failover, crash records,
quarantined and in-maintenance servers, the scheduler's job history.

One interface (``StateStore``: ``load`` and ``update``, and the operations built on them) and
two implementations. ``FileStateStore`` is the single watcher's: one JSON file per cluster,
replaced atomically (write, fsync, rename), so a crash mid-write never leaves a torn file;
changes are read-modify-write under a ``flock`` (the watcher, the CLI and the API change the
same file from several processes). ``repman.watcher.ha.state.EtcdStateStore`` keeps it under
the cluster's etcd prefix for several watchers. ``StateStore(state_dir)`` builds the file store,
as ``pathlib.Path`` builds its flavour, so existing callers keep working; ``open_store`` gives
the store registered for a state directory (etcd in HA mode) or the file store.

Both stores serialise with the one generic pair ``state_to_dict`` / ``state_from_dict``: every
field of ``ClusterState`` is written, and read back with its default when absent, so a field
added later needs no change here (and an older file or key still loads).
"""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

EVENTS_KEEP = 200   # the event history's bound (repman.watcher.events.KEEP), also on a hand-edited file


@dataclass
class CrashRecord:
    """Positions of every server at the moment the master was replaced."""

    kind: str                      # "failover" | "switchover"
    at: float
    old_master: str
    new_master: str
    positions: dict[str, str]      # server url -> gtid_binlog_pos (or gtid_current_pos) at that time
    failover_pos: str = ""         # the new master's position when it was promoted
    event_scheduler: bool = False  # the old master ran the event scheduler
    finished: bool = True          # False from a failover's promotion until its new master took writes

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CrashRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class ClusterState:
    failover_count: int = 0
    last_failover_at: float = 0.0
    crashes: list[CrashRecord] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)   # server url -> reason
    maintenance: list[str] = field(default_factory=list)        # server urls an operator took out
    master_event_scheduler: bool | None = None                  # last seen on the master (None: unknown)
    # Replicas' Seconds_Behind_Master read while the master still answered (url -> [seconds, at]):
    # once the master is gone MariaDB reports NULL, yet failover-max-slave-delay must still hold.
    lag_seen: dict[str, list[float]] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)    # scheduler runs, oldest first
    events: list[dict[str, Any]] = field(default_factory=list)  # event history, oldest first (watcher.events)




# How a stored value becomes a field again, for the fields whose JSON form is not their type.
_READERS: dict[str, Callable[[Any], Any]] = {
    "failover_count": int,
    "last_failover_at": float,
    "crashes": lambda raw: [CrashRecord.from_dict(c) for c in raw or []],
    "quarantined": lambda raw: dict(raw or {}),
    "maintenance": lambda raw: sorted({str(u) for u in raw or []}),
    "master_event_scheduler": lambda raw: None if raw is None else bool(raw),
    "lag_seen": lambda raw: {str(u): [float(v[0]), float(v[1])] for u, v in (raw or {}).items()},
    "jobs": lambda raw: [dict(j) for j in raw or []],
    "events": lambda raw: [dict(e) for e in raw or []][-EVENTS_KEEP:],
}


def state_to_dict(state: ClusterState) -> dict[str, Any]:
    """Every field, as JSON types (``asdict`` recurses into the crash records)."""
    return asdict(state)


def state_from_dict(raw: dict[str, Any]) -> ClusterState:
    """The fields present in ``raw`` (converted by ``_READERS`` when listed), the defaults for the rest;
    keys that are not fields (written by a newer version) are ignored."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(ClusterState):
        if f.name in raw:
            reader = _READERS.get(f.name)
            values[f.name] = reader(raw[f.name]) if reader is not None else copy.deepcopy(raw[f.name])
    return ClusterState(**values)


class StateStore:
    """The interface: ``load`` and ``update`` (and ``save``), the operations below built on them.

    ``StateStore(state_dir, keep)`` builds a ``FileStateStore``; other stores subclass this."""

    keep: int = 20

    def __new__(cls, *args: Any, **kwargs: Any) -> StateStore:
        return object.__new__(FileStateStore if cls is StateStore else cls)

    def load(self) -> ClusterState:
        raise NotImplementedError

    def update(self, change: Callable[[ClusterState], None]) -> ClusterState:
        """Load, change and save with no lost update between processes (``change`` may run more than once)."""
        raise NotImplementedError

    def save(self, state: ClusterState) -> None:
        raise NotImplementedError

    def _trimmed(self, state: ClusterState) -> ClusterState:
        state.crashes = state.crashes[-self.keep:]
        return state

    # Convenience operations used by the watcher and the CLI.
    def record_crash(self, record: CrashRecord, count_failover: bool) -> ClusterState:
        def change(state: ClusterState) -> None:
            state.crashes.append(record)
            if count_failover:
                state.failover_count += 1
                state.last_failover_at = record.at
        return self.update(change)

    def reset_failover_counter(self) -> None:
        self.update(lambda state: setattr(state, "failover_count", 0))

    def latest_crash(self) -> CrashRecord | None:
        crashes = self.load().crashes
        return crashes[-1] if crashes else None

    def quarantine(self, url: str, reason: str) -> None:
        self.update(lambda state: state.quarantined.__setitem__(url, reason))

    def release(self, url: str) -> None:
        def change(state: ClusterState) -> None:
            state.quarantined.pop(url, None)
        self.update(change)

    def set_maintenance(self, url: str, on: bool) -> bool:
        """Put a server in maintenance or take it out; True when that changed something."""
        changed = []

        def change(state: ClusterState) -> None:
            present = url in state.maintenance
            if on and not present:
                state.maintenance = sorted([*state.maintenance, url])
            elif not on and present:
                state.maintenance = [u for u in state.maintenance if u != url]
            changed.append(present != on)
        self.update(change)
        return changed[-1]          # the attempt that was stored (a remote store may retry)

    def set_master_event_scheduler(self, on: bool) -> None:
        self.update(lambda state: setattr(state, "master_event_scheduler", on))

    def set_lag_seen(self, lags: dict[str, list[float]]) -> None:
        self.update(lambda state: setattr(state, "lag_seen", dict(lags)))


class FileStateStore(StateStore):
    """One cluster's state in ``<state_dir>/state.json`` (the single watcher's store)."""

    def __init__(self, state_dir: Path, keep: int = 20) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / "state.json"
        self.keep = keep

    def load(self) -> ClusterState:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return ClusterState()
        return state_from_dict(raw)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "state.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update(self, change: Callable[[ClusterState], None]) -> ClusterState:
        """Load, change and save under the store's lock (no lost update between processes)."""
        with self._locked():
            state = self.load()
            change(state)
            self.save(state)
            return state

    def save(self, state: ClusterState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(state_to_dict(self._trimmed(state)), indent=2, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".state.")
        with os.fdopen(fd, "w") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def now() -> float:
    return time.time()


# State directories whose state lives elsewhere (HA mode: etcd), registered by the watcher.
_stores: dict[Path, Callable[[int], StateStore]] = {}
_stores_mutex = threading.Lock()


def use_store(state_dir: Path, factory: Callable[[int], StateStore] | None) -> None:
    """Make ``open_store(state_dir, keep)`` return ``factory(keep)``; None: the file store again."""
    with _stores_mutex:
        if factory is None:
            _stores.pop(Path(state_dir).resolve(), None)
        else:
            _stores[Path(state_dir).resolve()] = factory


def open_store(state_dir: Path, keep: int = 20) -> StateStore:
    """The store of a cluster's state directory: the registered one (etcd), else the file store."""
    with _stores_mutex:
        factory = _stores.get(Path(state_dir).resolve())
    return factory(keep) if factory is not None else FileStateStore(state_dir, keep)
