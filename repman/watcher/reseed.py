"""Re-seeding a diverged server from a logical dump of the primary (``autorejoin-mysqldump``).

The dump is one consistent snapshot (``--single-transaction``) carrying its GTID
position (``--gtid --master-data=2``); it is loaded with ``sql_log_bin=0`` after the
server's own user databases are dropped, its binlog is reset (it held the diverged
history), and replication starts from the dump's position.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pymysql

from repman.db import ServerAddress, connect, execute, query
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.flashback import FlashbackError, admin_options, apply_sql_file, tool
from repman.watcher.promote import finish_replica, point_at

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
_GTID_LINE = re.compile(r"^-- SET GLOBAL gtid_slave_pos='([^']*)';", re.MULTILINE)


def user_databases(conn: pymysql.connections.Connection) -> list[str]:
    rows = query(conn, "SHOW DATABASES")
    return [str(next(iter(r.values()))) for r in rows if str(next(iter(r.values()))) not in SYSTEM_SCHEMAS]


def dump(cfg: ClusterConfig, source: ServerAddress, path: Path) -> str:
    """Dump ``source``'s user databases to ``path``; returns the dump's GTID position."""
    with connect(source, cfg.admin, timeout=2) as conn:
        dbs = user_databases(conn)
        if not dbs:
            path.write_text("-- no user database\n")
            return str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or "")
    with admin_options(cfg) as options, open(path, "wb") as out:
        cmd = [tool("mariadb-dump", "mysqldump"), options, f"--host={source.host}", f"--port={source.port}",
               "--single-transaction", "--gtid", "--master-data=2",
               "--routines", "--events", "--triggers", "--hex-blob", "--databases", *dbs]
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, timeout=3600)
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise FlashbackError(f"mariadb-dump of {source.url} failed: {err[0]}")
    with open(path, errors="replace") as f:
        head = f.read(64 * 1024)
    m = _GTID_LINE.search(head)
    if not m:
        raise FlashbackError(f"the dump of {source.url} carries no GTID position")
    return m.group(1)


def reseed(cfg: ClusterConfig, server: ServerAddress, primary: ServerAddress) -> str:
    """Replace ``server``'s data by a dump of ``primary`` and replicate from it. Returns the position."""
    folder = cfg.state_dir / "rejoin"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{server.host}_{server.port}-{time.strftime('%Y%m%d-%H%M%S')}-reseed.sql"
    position = dump(cfg, primary, path)
    with connect(server, cfg.admin, timeout=2, read_timeout=600) as conn:
        execute(conn, "STOP SLAVE")
        execute(conn, "RESET SLAVE ALL")
        execute(conn, "SET SESSION sql_log_bin = 0")
        for db in user_databases(conn):
            execute(conn, f"DROP DATABASE `{db.replace('`', '``')}`")
    apply_sql_file(cfg, server, path)
    with connect(server, cfg.admin, timeout=2, read_timeout=120) as conn:
        execute(conn, "RESET MASTER")
        point_at(conn, cfg, primary, slave_pos=position)
        finish_replica(conn, cfg)
    path.unlink(missing_ok=True)
    return position
