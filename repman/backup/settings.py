"""A cluster's backup settings, read once from its validated keys.

Cross-key checks live here (restic needs a repository and a password, cron
expressions must parse) so ``config check`` and the watcher refuse a bad file
before anything runs, with the key named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from croniter import croniter

from repman.backup.keys import BACKUP_KEYS
from repman.errors import ConfigError
from repman.key_access import KeyValues

CRON_KEYS = ("scheduler-db-servers-physical-backup-cron", "scheduler-db-servers-logical-backup-cron")


def cron_expression(text: Any, key: str) -> str:
    """repman writes cron with seconds first (6 fields); croniter wants seconds last."""
    if not isinstance(text, str) or not text.split():
        raise ConfigError(key, f"expected a cron expression, got {text!r}")
    fields = text.split()
    if len(fields) == 6:
        fields = fields[1:] + fields[:1]
    elif len(fields) != 5:
        raise ConfigError(key, f"{text!r} has {len(fields)} fields; expected 5, or 6 with seconds first")
    expr = " ".join(fields)
    if not croniter.is_valid(expr):
        raise ConfigError(key, f"{text!r} is not a valid cron expression")
    return expr


def check_backup_section(where: str, values: Mapping[str, Any]) -> None:
    """Cross-key checks of one cluster section (``where`` is ``clusters.<name>``)."""
    for key in CRON_KEYS:
        cron_expression(values.get(key), f"{where}.{key}")
    if values.get("backup-restic"):
        if not values.get("backup-restic-repository"):
            raise ConfigError(f"{where}.backup-restic-repository", "is required when backup-restic is on")
        if not values.get("backup-restic-password"):
            raise ConfigError(f"{where}.backup-restic-password", "is required when backup-restic is on")


@dataclass(frozen=True)
class BackupSettings:
    cluster: str
    state_dir: Path
    restic: bool
    restic_repository: str
    restic_password: str
    restic_sftp_command: str
    backup_dir: Path
    binlogs: bool
    binlogs_dir: Path
    keep: dict[str, int]
    physical_type: str
    logical_type: str

    def __repr__(self) -> str:  # the password never lands in a log line
        return f"BackupSettings(cluster={self.cluster!r}, restic={self.restic}, dir={str(self.backup_dir)!r})"

    @classmethod
    def from_values(cls, cluster: str, state_dir: Path, values: Mapping[str, Any]) -> BackupSettings:
        keys = KeyValues([BACKUP_KEYS], values)
        return cls(
            cluster=cluster, state_dir=Path(state_dir),
            restic=keys.flag("backup-restic"),
            restic_repository=keys.text("backup-restic-repository"),
            restic_password=keys.text("backup-restic-password"),
            restic_sftp_command=keys.text("backup-restic-sftp-command"),
            backup_dir=Path(keys.text("backup-dir") or Path(state_dir) / "backups"),
            binlogs=keys.flag("backup-binlogs"),
            binlogs_dir=Path(keys.text("backup-binlogs-dir") or Path(state_dir) / "binlogs"),
            keep={p: keys.integer(f"backup-keep-{p}") for p in ("last", "hourly", "daily", "weekly", "monthly")},
            physical_type=keys.text("backup-physical-type"),
            logical_type=keys.text("backup-logical-type"),
        )

    @classmethod
    def from_cluster(cls, cfg: Any) -> BackupSettings:
        return cls.from_values(cfg.name, cfg.state_dir, cfg.values)
