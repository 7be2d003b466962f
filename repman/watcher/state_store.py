"""Watcher state that must survive a restart: failover counter, last failover, crash records.

One JSON file per cluster, replaced atomically (write, fsync, rename), so a
crash mid-write never leaves a torn file and a restarted watcher keeps its limits.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Any


@dataclass
class CrashRecord:
    """Positions of every server at the moment the master was replaced."""

    kind: str                      # "failover" | "switchover"
    at: float
    old_master: str
    new_master: str
    positions: dict[str, str]      # server url -> gtid_binlog_pos (or gtid_current_pos) at that time
    failover_pos: str = ""         # the new master's position when it was promoted

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "CrashRecord":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class ClusterState:
    failover_count: int = 0
    last_failover_at: float = 0.0
    crashes: list[CrashRecord] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)   # server url -> reason


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
        )

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
        state = self.load()
        state.crashes.append(record)
        if count_failover:
            state.failover_count += 1
            state.last_failover_at = record.at
        self.save(state)
        return state

    def reset_failover_counter(self) -> None:
        state = self.load()
        state.failover_count = 0
        self.save(state)

    def latest_crash(self) -> CrashRecord | None:
        crashes = self.load().crashes
        return crashes[-1] if crashes else None

    def quarantine(self, url: str, reason: str) -> None:
        state = self.load()
        state.quarantined[url] = reason
        self.save(state)

    def release(self, url: str) -> None:
        state = self.load()
        state.quarantined.pop(url, None)
        self.save(state)


def now() -> float:
    return time.time()
