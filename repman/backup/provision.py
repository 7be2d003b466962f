"""What the Pulumi layer asks of backups: a ready repository, and nodes born from a backup.

``ensure_repositories`` runs ``restic init`` (idempotent) for every cluster of a
watcher config that stores backups in restic, so the first scheduled backup
does not fail on a missing repository. ``restore_node`` creates a local node
from another cluster's backups and binlog archive (``prov-db-restore-from``),
to a time or a GTID, instead of an empty datadir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from repman.backup.repository import DirectoryRepository, open_repository
from repman.backup.settings import BackupSettings
from repman.db import ServerAddress
from repman.errors import ConfigError


def ensure_repositories(watcher_config: Any) -> list[str]:
    """Initialise each cluster's backup repository; returns the ones created now."""
    created = []
    for cfg in watcher_config.clusters.values():
        repo = open_repository(BackupSettings.from_cluster(cfg))
        if isinstance(repo, DirectoryRepository) and not cfg.text("backup-dir"):
            continue   # the default folder is made by the first backup
        if repo.init():
            created.append(repo.description)
    return created


def check_restore_keys(values: Mapping[str, Any], namespace: str = "repman") -> None:
    """prov-db-restore-*: checked when the stack config is loaded, not when a node is created."""
    from repman.backup.cli import parse_time
    source = values.get("prov-db-restore-from") or ""
    to_time = values.get("prov-db-restore-to-time") or ""
    to_gtid = values.get("prov-db-restore-to-gtid") or ""
    if (to_time or to_gtid) and not source:
        raise ConfigError(f"{namespace}:prov-db-restore-from", "is required with prov-db-restore-to-time/-to-gtid")
    if to_time and to_gtid:
        raise ConfigError(f"{namespace}:prov-db-restore-to-time", "give a time or a GTID, not both")
    if to_time:
        try:
            parse_time(str(to_time))
        except ConfigError as exc:
            raise ConfigError(f"{namespace}:prov-db-restore-to-time", str(exc).split(": ", 1)[1]) from None
    if to_gtid:
        from repman.gtid import GtidPosition
        try:
            GtidPosition.parse(str(to_gtid))
        except ValueError:
            raise ConfigError(f"{namespace}:prov-db-restore-to-gtid", f"{to_gtid!r} is not a GTID list "
                              "(domain-server-seq[,...])") from None


def restore_node(spec: Any, restore: Mapping[str, Any]) -> int:
    """Create the local node ``spec`` (a ``LocalNodeSpec``) from a backup; returns its pid."""
    from repman.backup.binlogs import BinlogArchive
    from repman.backup.cli import parse_time
    from repman.backup.restore import restore as run_restore
    from repman.local.mariadb import read_pid
    from repman.local.node import _ensure_admin_user, render_node_config
    from repman.watcher.config import load_config

    source = str(restore.get("from") or "")
    if not Path(source).is_file():
        raise ConfigError("repman:prov-db-restore-from", f"{source!r} is not a readable watcher config")
    cfg = load_config(source).cluster(str(restore.get("cluster") or "") or None)
    to_time = parse_time(str(restore["to_time"])) if restore.get("to_time") else None
    to_gtid = str(restore.get("to_gtid") or "") or None
    if to_time is None and to_gtid is None:
        txns = BinlogArchive(BackupSettings.from_cluster(cfg).binlogs_dir).transactions()
        last: dict[int, str] = {}
        for _, t in txns:
            last[t.domain] = t.gtid
        to_gtid = ",".join(last.values()) or None
        if to_gtid is None:
            raise ConfigError("repman:prov-db-restore-from", f"cluster {cfg.name} has no archived binlogs: "
                              "give prov-db-restore-to-gtid or prov-db-restore-to-time")
    paths = spec.paths
    paths.make_dirs()
    paths.cnf.write_text(render_node_config(spec))
    run_restore(cfg, ServerAddress(spec.host, spec.port), Path(spec.base_dir), to_gtid=to_gtid, to_time=to_time,
                server_id=spec.server_id, plan=spec.plan)
    _ensure_admin_user(spec)     # the new cluster's admin, whatever the source cluster used
    return read_pid(paths) or 0
