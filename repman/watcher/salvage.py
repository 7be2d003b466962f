"""Salvage of a dead master's last writes from its binlogs (asynchronous clusters).

With asynchronous replication a master that dies may hold commits that no
replica received: MHA recovers them by copying the dead master's binlog over
SSH. We do the same where the dead master's binlog folder is reachable, on this
host (local backend) or over SSH: after the election and before the new master
takes writes, ``mariadb-binlog --start-position=<candidate's GTID position>``
reads the dead master's binlogs from just after what the candidate has, and the
``mariadb`` client applies those events to the candidate. The events keep their
GTIDs (mariadb-binlog sets server_id and gtid_seq_no per transaction), so the
returning old master finds its history contained in the new master's and
rejoins without flashback. Bounded by ``failover-salvage-timeout``: a salvage
that does not finish in time is abandoned and the failover goes on.

Settings: ``failover-salvage-binlog`` (on/off), ``failover-salvage-timeout``,
``failover-salvage-binlog-dirs`` (``host:port=/binlog/folder`` per server, rendered
by the local and SSH backends), ``failover-salvage-ssh-user`` and
``failover-salvage-ssh-options`` (read over SSH when a user is set).
The admin password reaches the ``mariadb`` client through a 0600 option file
that is deleted at once: never on a command line or in an environment.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from repman.db import ServerAddress, connect, execute, query
from repman.gtid import GtidPosition
from repman.watcher.cluster_config import ClusterConfig

BINLOG_TOOL = "mariadb-binlog"
CLIENT_TOOL = "mariadb"


@dataclass
class SalvageResult:
    """What a salvage did: ``applied`` is True when events were applied to the candidate."""

    applied: bool
    sentence: str
    before: str = ""
    after: str = ""


def binlog_dirs(cfg: ClusterConfig) -> dict[str, str]:
    """``host:port`` -> binlog folder, from ``failover-salvage-binlog-dirs``."""
    out: dict[str, str] = {}
    for item in cfg.strings("failover-salvage-binlog-dirs"):
        server, sep, folder = str(item).partition("=")
        if sep and server.strip() and folder.strip():
            out[server.strip()] = folder.strip()
    return out


def _remote(cfg: ClusterConfig, master: ServerAddress, argv: list[str]) -> list[str]:
    """``argv`` as run where the dead master's files are: here, or over SSH on its host."""
    user = cfg.text("failover-salvage-ssh-user")
    if not user:
        return argv
    options = shlex.split(cfg.text("failover-salvage-ssh-options"))
    return ["ssh", "-o", "BatchMode=yes", *options, f"{user}@{master.host}", shlex.join(argv)]


def _binlog_files(cfg: ClusterConfig, master: ServerAddress, folder: str, deadline: float) -> list[str]:
    """The dead master's binlog files in order, from its index file (``*.index`` in the folder)."""
    script = (f"cd {shlex.quote(folder)} && for i in *.index; do cat \"$i\"; done")
    done = subprocess.run(_remote(cfg, master, ["sh", "-c", script]), capture_output=True, text=True,
                          timeout=max(0.1, deadline - time.monotonic()))
    if done.returncode != 0:
        raise RuntimeError(f"cannot read the binlog index in {folder}: {done.stderr.strip()[:200]}")
    names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return [n if n.startswith("/") else str(Path(folder) / n.lstrip("./")) for n in names]


def _option_file(cfg: ClusterConfig, target: ServerAddress) -> str:
    fd, path = tempfile.mkstemp(prefix="repman-salvage-", suffix=".cnf")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"[client]\nhost={target.host}\nport={target.port}\nprotocol=tcp\n"
                 f"user={cfg.admin.user}\npassword={cfg.admin.password}\n")
    return path


def _position(cfg: ClusterConfig, address: ServerAddress) -> str:
    """Per domain the later of binlog and slave position.

    ``gtid_current_pos`` would hide the salvaged events: they carry the dead master's
    server_id, and for a domain without a GTID of its own server it shows the slave position.
    """
    with connect(address, cfg.admin, timeout=2) as conn:
        row = query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS b, @@GLOBAL.gtid_slave_pos AS s")[0]
    merged = dict(GtidPosition.parse(str(row["s"] or "")).by_domain)
    for domain, gtid in GtidPosition.parse(str(row["b"] or "")).by_domain.items():
        if domain not in merged or gtid.seq > merged[domain].seq:
            merged[domain] = gtid
    return str(GtidPosition(merged))


def salvage(cfg: ClusterConfig, master: ServerAddress, cand: ServerAddress) -> SalvageResult:
    """Apply to ``cand`` the dead ``master``'s binlog events beyond ``cand``'s GTID position.

    Never raises for a salvage problem: the failover goes on and the sentence says why.
    """
    try:
        return _salvage(cfg, master, cand)
    except pymysql.MySQLError as exc:
        return SalvageResult(False, f"binlog salvage from {master.url} failed on {cand.url}: {exc}")


def _salvage(cfg: ClusterConfig, master: ServerAddress, cand: ServerAddress) -> SalvageResult:
    if not cfg.flag("failover-salvage-binlog"):
        return SalvageResult(False, "binlog salvage off (failover-salvage-binlog)")
    if cfg.flag("semisync"):
        return SalvageResult(False, "semi-sync cluster: every acknowledged write is on a replica already")
    folder = binlog_dirs(cfg).get(master.url)
    if not folder:
        return SalvageResult(False, f"no binlog folder known for {master.url} (failover-salvage-binlog-dirs)")
    timeout = cfg.seconds("failover-salvage-timeout")
    deadline = time.monotonic() + timeout
    with connect(cand, cfg.admin, timeout=2) as conn:
        execute(conn, "STOP SLAVE")          # its relay log is applied; nothing may interleave
    before = _position(cfg, cand)
    try:
        files = _binlog_files(cfg, master, folder, deadline)
        if not files:
            return SalvageResult(False, f"no binlog files listed in {folder}", before, before)
        applied = _apply(cfg, master, cand, files, before, deadline)
    except subprocess.TimeoutExpired:
        after = _position(cfg, cand)
        _adopt(cfg, cand, after)
        return SalvageResult(after != before, f"binlog salvage from {master.url} abandoned after "
                             f"failover-salvage-timeout {timeout:g}s (at {after or 'empty GTID'})", before, after)
    except (OSError, RuntimeError) as exc:
        return SalvageResult(False, f"binlog salvage from {master.url} failed: {exc}", before, _position(cfg, cand))
    after = _position(cfg, cand)
    _adopt(cfg, cand, after)
    gained = GtidPosition.parse(after).total() - GtidPosition.parse(before).total()
    if not applied:
        return SalvageResult(gained > 0, f"binlog salvage from {master.url} stopped ({applied.error}) after "
                             f"{max(gained, 0)} transaction(s)", before, after)
    if gained <= 0:
        return SalvageResult(False, f"{cand.url} already had every event of {master.url}'s binlogs", before, after)
    return SalvageResult(True, f"salvaged {gained} transaction(s) only {master.url} had, from its binlogs "
                         f"({before or 'empty GTID'} -> {after})", before, after)


def _adopt(cfg: ClusterConfig, cand: ServerAddress, position: str) -> None:
    """Make ``gtid_current_pos`` (the failover position) include the salvaged events.

    They carry the dead master's server_id, so the candidate's binlog holds them but
    its slave position, which ``gtid_current_pos`` shows for that domain, does not.
    """
    with connect(cand, cfg.admin, timeout=2) as conn:
        execute(conn, "SET GLOBAL gtid_slave_pos = %s", (position,))


@dataclass
class _Applied:
    ok: bool
    error: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _apply(cfg: ClusterConfig, master: ServerAddress, cand: ServerAddress, files: list[str], start: str,
           deadline: float) -> _Applied:
    """mariadb-binlog (here or over SSH) piped into the mariadb client aimed at ``cand``."""
    reader_argv = [BINLOG_TOOL, "--skip-gtid-strict-mode"]
    if start:
        reader_argv.append(f"--start-position={start}")
    reader_argv += files
    options = _option_file(cfg, cand)
    try:
        reader = subprocess.Popen(_remote(cfg, master, reader_argv), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            client = subprocess.Popen([CLIENT_TOOL, f"--defaults-extra-file={options}", "--binary-mode",
                                       "--batch", "--silent"], stdin=reader.stdout, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        except BaseException:
            reader.kill()
            raise
        assert reader.stdout is not None
        reader.stdout.close()       # the client owns the pipe now
        try:
            _, client_err = client.communicate(timeout=max(0.1, deadline - time.monotonic()))
            reader_err = reader.communicate(timeout=max(0.1, deadline - time.monotonic()))[1]
        except subprocess.TimeoutExpired:
            for proc in (reader, client):
                proc.kill()
                proc.wait()
            raise
    finally:
        os.unlink(options)
    if reader.returncode != 0:
        return _Applied(False, f"{BINLOG_TOOL}: {reader_err.decode(errors='replace').strip()[:300]}")
    if client.returncode != 0:
        return _Applied(False, f"{CLIENT_TOOL}: {client_err.decode(errors='replace').strip()[:300]}")
    return _Applied(True)
