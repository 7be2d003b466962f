"""The backup catalog: one JSON file per cluster listing every backup and its outcome.

A backup is recorded as ``running`` before it starts, so one cut short by a
crash stays visible (``interrupted`` once nothing runs it any more) instead of
vanishing. Changes are read-modify-write under a ``flock``, like the state store.
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
from typing import Callable, Iterator

from repman.local.mariadb import pid_alive


@dataclass
class BackupRecord:
    id: str
    type: str                 # physical | logical
    tool: str                 # mariabackup | mysqldump | mydumper
    server: str
    start: float
    end: float = 0.0
    gtid: str = ""            # the server's gtid_binlog_pos the backup is consistent with
    binlog_file: str = ""
    binlog_pos: int = 0
    size: int = 0
    status: str = "running"   # running | ok | failed | interrupted | removed
    repository: str = ""
    location: str = ""        # the restic snapshot id, or the folder name
    name: str = ""            # the stream's name inside the backup
    error: str = ""
    pid: int = 0              # the process running it (to tell interrupted from running)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Catalog:
    path: Path
    records: list[BackupRecord] = field(default_factory=list)

    @classmethod
    def at(cls, state_dir: Path) -> Catalog:
        return cls(Path(state_dir) / "backups.json")

    def load(self) -> list[BackupRecord]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        known = set(BackupRecord.__dataclass_fields__)
        records = [BackupRecord(**{k: v for k, v in r.items() if k in known}) for r in raw.get("backups", [])]
        for r in records:
            if r.status == "running" and not (r.pid > 0 and pid_alive(r.pid)):
                r.status = "interrupted"
        return records

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update(self, change: Callable[[list[BackupRecord]], None]) -> list[BackupRecord]:
        with self._locked():
            records = self.load()
            change(records)
            payload = json.dumps({"backups": [r.as_dict() for r in records]}, indent=2, sort_keys=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".backups.")
            with os.fdopen(fd, "w") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            return records

    def put(self, record: BackupRecord) -> None:
        def change(records: list[BackupRecord]) -> None:
            for i, r in enumerate(records):
                if r.id == record.id:
                    records[i] = record
                    return
            records.append(record)
        self.update(change)

    def get(self, backup_id: str) -> BackupRecord | None:
        return next((r for r in self.load() if r.id == backup_id), None)



def new_backup_id(kind: str, at: float | None = None) -> str:
    t = time.gmtime(at if at is not None else time.time())
    return f"{time.strftime('%Y%m%dT%H%M%SZ', t)}-{kind}-{os.urandom(3).hex()}"
