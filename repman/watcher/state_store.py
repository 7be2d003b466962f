"""Watcher state that must survive a restart: failover counter, last failover, crash records,
quarantined and in-maintenance servers.

One JSON file per cluster, replaced atomically (write, fsync, rename), so a
crash mid-write never leaves a torn file and a restarted watcher keeps its limits.
Changes are read-modify-write under a ``flock``: the watcher, the CLI and the API
change the same file from several processes. Fields added later default when an
older file lacks them.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
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


class StateStore:
    """Load/save one cluster's persistent state in ``<state_dir>/state.json``."""

    def __init__(self, state_dir: Path, keep: int = 20) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / "state.json"
        self.keep = keep

    def load(self) -> ClusterState:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return ClusterState()
        return ClusterState(
            failover_count=int(raw.get("failover_count", 0)),
            last_failover_at=float(raw.get("last_failover_at", 0.0)),
            crashes=[CrashRecord.from_dict(c) for c in raw.get("crashes", [])],
            quarantined=dict(raw.get("quarantined", {})),
            maintenance=sorted({str(u) for u in raw.get("maintenance", []) or []}),
            master_event_scheduler=(None if raw.get("master_event_scheduler") is None
                                    else bool(raw["master_event_scheduler"])),
            lag_seen={str(u): [float(v[0]), float(v[1])] for u, v in (raw.get("lag_seen") or {}).items()},
            jobs=[dict(j) for j in raw.get("jobs") or []],
            events=[dict(e) for e in raw.get("events") or []][-EVENTS_KEEP:],
        )

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
        state.crashes = state.crashes[-self.keep:]
        payload = json.dumps(
            {**asdict(state), "crashes": [asdict(c) for c in state.crashes]}, indent=2, sort_keys=True,
        )
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".state.")
        with os.fdopen(fd, "w") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

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
        return changed[0]

    def set_master_event_scheduler(self, on: bool) -> None:
        self.update(lambda state: setattr(state, "master_event_scheduler", on))

    def set_lag_seen(self, lags: dict[str, list[float]]) -> None:
        self.update(lambda state: setattr(state, "lag_seen", dict(lags)))


def now() -> float:
    return time.time()
