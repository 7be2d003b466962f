"""Undoing an old master's extra transactions with ``mariadb-binlog --flashback``.

The events after the failover position are read from the server itself
(``--read-from-remote-server`` with a GTID start position, so it works whatever
host the server runs on), saved to the state folder, checked (only row events
can be reversed: a DDL or a statement-format write cannot), then reversed and
applied with ``sql_log_bin=0`` so that the undo itself creates no GTID.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from repman.backup.secretfiles import private_file
from repman.db import ServerAddress, connect, query
from repman.errors import RepmanError
from repman.watcher.cluster_config import ClusterConfig

_HEADER = re.compile(r"^#\d{6}\s+\d{1,2}:\d{2}:\d{2}\s+server id (\d+)\s+end_log_pos \d+"
                     r"(?: CRC32 0x[0-9a-fA-F]+)?\s+(.*)$")
_OK_STATEMENTS = {"BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", ""}


class FlashbackError(RepmanError):
    """The extra events could not be read, saved or reversed."""


@dataclass
class BinlogTail:
    """The events a server holds after a position."""

    gtids: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)   # why they cannot be flashed back
    text: str = ""

    @property
    def reversible(self) -> bool:
        return not self.blockers


def tool(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise FlashbackError(f"none of {', '.join(names)} is installed")


@contextmanager
def admin_options(cfg: ClusterConfig) -> Iterator[str]:
    """``--defaults-extra-file=`` of a 0600 file holding the admin user and password.

    It must be the client's first argument. The password never goes on the command line
    (``ps``) nor into the environment (``/proc/PID/environ``); the file is removed when the
    tool is done."""
    text = f"[client]\nuser={_quoted(cfg.admin.user)}\npassword={_quoted(cfg.admin.password)}\n"
    with private_file(text, "client.cnf") as path:
        yield f"--defaults-extra-file={path}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _connection_args(cfg: ClusterConfig, server: ServerAddress) -> list[str]:
    return [f"--host={server.host}", f"--port={server.port}"]


def first_binlog(cfg: ClusterConfig, server: ServerAddress) -> str:
    with connect(server, cfg.admin, timeout=2) as conn:
        rows = query(conn, "SHOW BINARY LOGS")
    if not rows:
        raise FlashbackError(f"{server.url} has no binary log")
    return str(rows[0]["Log_name"])


def _binlog(cfg: ClusterConfig, server: ServerAddress, start: str, extra: list[str]) -> str:
    with admin_options(cfg) as options:
        cmd = [tool("mariadb-binlog", "mysqlbinlog"), options, "--read-from-remote-server",
               *_connection_args(cfg, server), f"--start-position={start}", "--to-last-log", *extra,
               first_binlog(cfg, server)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, errors="replace")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FlashbackError(f"mariadb-binlog on {server.url} from {start or 'the start'} failed: {tail[0]}")
    return done.stdout


def parse_tail(text: str) -> BinlogTail:
    """GTIDs and blockers from ``mariadb-binlog -v`` output."""
    out = BinlogTail(text=text)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _HEADER.match(lines[i])
        i += 1
        if not m:
            continue
        event = m.group(2).strip()
        if event.startswith("GTID "):
            parts = event.split()
            out.gtids.append(parts[1])
            if "ddl" in parts[2:]:
                out.blockers.append(f"{parts[1]} is DDL")
        elif event.startswith("Query"):
            statement: list[str] = []
            while i < len(lines) and not _HEADER.match(lines[i]) and not lines[i].startswith("# at "):
                line = lines[i].strip()
                i += 1
                if line.startswith(("SET ", "/*", "#", "use ", "DELIMITER")):
                    continue
                statement.append(line.removesuffix("/*!*/;"))
            text_stmt = " ".join(s for s in statement if s).strip().upper()
            if text_stmt not in _OK_STATEMENTS and not text_stmt.startswith("XA "):
                gtid = out.gtids[-1] if out.gtids else "?"
                out.blockers.append(f"{gtid} is a statement-format event ({text_stmt[:40]!r})")
    return out


def read_tail(cfg: ClusterConfig, server: ServerAddress, start: str) -> BinlogTail:
    """The events of ``server`` after GTID position ``start``."""
    return parse_tail(_binlog(cfg, server, start, ["--verbose"]))


def save_tail(cfg: ClusterConfig, server: ServerAddress, tail: BinlogTail, what: str = "extra") -> Path:
    """Keep the events in the state folder (replayable: base64 events plus readable comments)."""
    folder = cfg.state_dir / "rejoin"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{server.host}_{server.port}-{time.strftime('%Y%m%d-%H%M%S')}-{what}.binlog.sql"
    path = folder / name
    path.write_text(f"-- {what} events of {server.url}: {', '.join(tail.gtids)}\n" + tail.text)
    return path


def flashback(cfg: ClusterConfig, server: ServerAddress, start: str) -> Path:
    """Reverse every event after ``start`` on ``server`` (not binlogged). Returns the undo file."""
    undo = _binlog(cfg, server, start, ["--flashback"])
    folder = cfg.state_dir / "rejoin"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{server.host}_{server.port}-{time.strftime('%Y%m%d-%H%M%S')}-flashback.sql"
    path.write_text(undo)
    apply_sql_file(cfg, server, path)
    return path


def apply_sql_file(cfg: ClusterConfig, server: ServerAddress, path: Path, timeout: float = 3600) -> None:
    """Run a SQL file on ``server`` without binlogging it (no GTID is created)."""
    with admin_options(cfg) as options, open(path, "rb") as f:
        cmd = [tool("mariadb", "mysql"), options, *_connection_args(cfg, server), "--binary-mode",
               "--init-command=SET SESSION sql_log_bin=0"]
        done = subprocess.run(cmd, stdin=f, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        err = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise FlashbackError(f"applying {path.name} to {server.url} failed: {err[0]}")
