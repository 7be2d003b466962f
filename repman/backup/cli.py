"""``repman backup``, ``repman backups``, ``repman restore``, ``repman archive-binlogs``.

Kept apart from ``repman/cli.py`` so the main command table only gains a line.
Errors are one line and a non-zero exit like every other command.
"""

from __future__ import annotations

import argparse
import datetime
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from repman.db import ServerAddress
from repman.errors import ConfigError

EXAMPLES = """\
  repman --config repman.yaml backup --type physical    mariadb-backup streamed from a replica
  repman --config repman.yaml backups --json            the catalog (id, type, server, GTID, size, status)
  repman --config repman.yaml restore --to-gtid 0-1-500 --target 127.0.0.1:3320 --datadir /srv/restored
"""


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("backup", "take a backup now (physical by default) into the backup repository",
            "Physical: mariadb-backup --stream=xbstream from a healthy replica (the primary only\n"
            "when none is healthy). Logical: mariadb-dump --single-transaction --gtid, or mydumper\n"
            "(backup-logical-type). Stored in restic (backup-restic) or backup-dir; retention\n"
            "(backup-keep-*) applies after a good backup.\n" + EXAMPLES)
    p.add_argument("--type", choices=["physical", "logical"], default="physical")
    p.add_argument("--from", dest="source", metavar="HOST:PORT", help="back up this server instead")
    p.add_argument("--json", action="store_true", help="print the catalog entry as JSON")
    p = add("backups", "list the backup catalog (id, type, server, start/end, GTID, size, status)")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.add_argument("--check", action="store_true", help="also run the repository's integrity check "
                                                          "(restic check) and the binlog archive's sequence check")
    p = add("restore", "point-in-time restore of a physical backup plus archived binlogs",
            "Into a stopped local server (--datadir holds its my.cnf) or a fresh folder (a new server\n"
            "is configured there, listening on --target). Refused when a server answers on --target.\n"
            "--to-time replays transactions whose binlog timestamp is before T (whole seconds,\n"
            "like mariadb-binlog --stop-datetime); T is ISO 8601 (no zone: this machine's local time)\n"
            "or @EPOCH.\n" + EXAMPLES)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--to-time", metavar="T")
    what.add_argument("--to-gtid", metavar="GTID")
    p.add_argument("--backup", metavar="ID", help="the backup to start from: physical, or a mariadb-dump "
                                                   "logical one (default: the latest good physical one "
                                                   "before the point)")
    p.add_argument("--target", metavar="HOST:PORT", required=True)
    p.add_argument("--datadir", metavar="DIR", required=True, help="the server's folder (my.cnf, data/, run/)")
    p.add_argument("--server-id", type=int, default=0, help="server_id for a fresh server")
    p.add_argument("--json", action="store_true")
    add("archive-binlogs", "copy the primary's binlogs into backup-binlogs-dir until SIGTERM (follows failovers)",
        "What the watcher does with backup-binlogs: on, as a command of its own.")


def parse_time(text: str) -> float:
    if text.startswith("@"):
        try:
            return float(text[1:])
        except ValueError:
            raise ConfigError("--to-time", f"bad epoch {text!r}") from None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError("--to-time", f"{text!r} is not an ISO 8601 time (e.g. 2026-12-01T04:50:00Z) "
                                       "or @EPOCH") from None
    return moment.timestamp()


def _cluster(args: argparse.Namespace):
    from repman.cli import _load
    return _load(args).cluster(args.cluster)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t else "-"


def cmd_backup(args: argparse.Namespace) -> int:
    from repman.backup.take import take_backup
    from repman.cli import _stderr_log
    cfg = _cluster(args)
    source = ServerAddress.parse(args.source, "--from") if args.source else None
    record = take_backup(cfg, args.type, log=_stderr_log(args.verbose), source=source)
    if args.json:
        print(json.dumps(record.as_dict(), indent=2, sort_keys=True))
    else:
        print(f"{record.type} backup {record.id} of {record.server}: {record.size} bytes, GTID {record.gtid}")
    return 0


def cmd_backups(args: argparse.Namespace) -> int:
    from repman.backup.binlogs import BinlogArchive, sequence_problems
    from repman.backup.catalog import Catalog
    from repman.backup.repository import open_repository
    from repman.backup.settings import BackupSettings
    cfg = _cluster(args)
    settings = BackupSettings.from_cluster(cfg)
    fields = ("id", "type", "tool", "server", "start", "end", "gtid", "size", "status", "repository", "error")
    records = [{k: r.as_dict()[k] for k in fields} for r in Catalog.at(settings.state_dir).load()]
    checks: dict[str, Any] = {}
    if args.check:
        checks["repository"] = open_repository(settings).check()
        txns = [t for _, t in BinlogArchive(settings.binlogs_dir).transactions()]
        problems = sequence_problems(txns)
        span = f" from {txns[0].gtid} to {txns[-1].gtid}" if txns else ""
        checks["binlog_archive"] = (f"{len(txns)} transactions{span}, " +
                                    ("contiguous" if not problems else "; ".join(problems[:5])))
    if args.json:
        print(json.dumps({"backups": records, **({"checks": checks} if checks else {})}, indent=2, sort_keys=True))
    else:
        print(f"{'ID':<34} {'TYPE':<8} {'SERVER':<22} {'START (UTC)':<19} {'END':<19} {'GTID':<16} "
              f"{'SIZE':>12} STATUS")
        for r in records:
            print(f"{r['id']:<34} {r['type']:<8} {r['server']:<22} {_when(r['start']):<19} {_when(r['end']):<19} "
                  f"{r['gtid'] or '-':<16} {r['size']:>12} {r['status']}")
        for name, text in checks.items():
            print(f"{name}: {text}")
    return 1 if checks and "contiguous" not in checks.get("binlog_archive", "contiguous") else 0


def cmd_restore(args: argparse.Namespace) -> int:
    from repman.backup.restore import restore
    from repman.cli import _stderr_log
    cfg = _cluster(args)
    target = ServerAddress.parse(args.target, "--target")
    to_time = parse_time(args.to_time) if args.to_time else None
    res = restore(cfg, target, Path(args.datadir), to_gtid=args.to_gtid, to_time=to_time, backup_id=args.backup,
                  server_id=args.server_id, log=_stderr_log(args.verbose))
    if args.json:
        print(json.dumps(res.__dict__, indent=2, sort_keys=True))
    else:
        print(f"restored {res.target} from backup {res.backup}: GTID {res.gtid}, {res.replayed} transactions "
              f"replayed, {res.seconds.get('total', 0):.1f}s")
    return 0


def cmd_archive_binlogs(args: argparse.Namespace) -> int:
    import logging

    from repman.backup.binlogs import ArchiverThread
    cfg = _cluster(args)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    log = logging.getLogger("repman.backup").info
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    archiver = ArchiverThread(cfg, log=log).start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        archiver.stop()
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "backup": cmd_backup, "backups": cmd_backups, "restore": cmd_restore, "archive-binlogs": cmd_archive_binlogs,
}
