"""Seed a replica from a physical backup streamed from a healthy cluster member.

Why: a node that joins (scale-out, a replaced node, ``repman reseed``,
``autoseed``) cannot replay the primary's binlogs once they are purged (error
1236), and replaying them is slow anyway. ``mariadb-backup --backup
--stream=xbstream | mbstream -x`` then ``--prepare`` copies the data whatever the
binlogs hold; the backup records the GTID it is consistent with, which becomes
the node's ``gtid_slave_pos``.

Steps (each failure names the node and the step, and leaves the node's old
datadir in place): ``source`` (pick a healthy replica, else the primary),
``stream`` (backup piped into the new datadir, bytes and rate reported),
``prepare``, ``install`` (stop the node, swap datadirs, start it), ``attach``
(gtid_slave_pos, CHANGE MASTER, read-only, START SLAVE) and ``catch-up``.

Local backend: source and target run on this host, so ``mariadb-backup`` reads
the source's datadir directly and the target's datadir is swapped in place.
SSH hosts would run the same two commands on each side of an SSH pipe (not done).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pymysql

from repman.db import Credential, ServerAddress, execute, execute_unlogged, query, session
from repman.errors import RepmanError
from repman.gtid import GtidPosition
from repman.local.mariadb import LocalServerPaths, start_server, stop_server
from repman.topology import ServerState, read_state

Progress = Callable[[str], None]
CHUNK = 1 << 20
BACKUP_TOOL = "mariadb-backup"
STREAM_TOOL = "mbstream"


class SeedError(RepmanError):
    """Seeding failed at a named step; the node keeps the data it had."""

    def __init__(self, node: ServerAddress, step: str, detail: str) -> None:
        self.node, self.step = node, step
        super().__init__(f"seeding {node.url} failed at step '{step}': {detail}")


@dataclass
class SeedRequest:
    target: ServerAddress
    primary: ServerAddress
    members: Sequence[ServerAddress]
    admin: Credential
    replication: Credential
    semisync: bool = False
    heartbeat_period: float = 0.5
    connect_retry: int = 1
    wait_timeout: float = 120.0
    source: ServerAddress | None = None
    progress: Progress = field(default=lambda msg: None)
    # The target's node directory when it cannot be asked (stopped, datadir lost).
    target_base: Path | None = None
    replication_ssl: bool = False  # replication-use-ssl: the copy verifies its master's certificate


@dataclass
class SeedResult:
    target: ServerAddress
    source: ServerAddress
    gtid: str
    bytes_copied: int
    seconds: dict[str, float]


def local_paths(address: ServerAddress, admin: Credential) -> LocalServerPaths:
    """The on-disk layout of a local node, found from the live server's ``@@datadir``."""
    with session(address, admin, timeout=3) as conn:
        datadir = Path(str(query(conn, "SELECT @@GLOBAL.datadir AS d")[0]["d"]))
    paths = LocalServerPaths(datadir.parent)
    if not paths.cnf.is_file():
        raise RepmanError(f"{address.url} is not a local repman node (no {paths.cnf})")
    return paths


def needs_seed(state: ServerState, primary_oldest: GtidPosition) -> str:
    """Why this node cannot simply replicate (empty string: it can).

    ``primary_oldest`` is the GTID list at the start of the primary's oldest binlog:
    everything before it is purged, so a node behind it can only be seeded."""
    if state.replica is not None and "1236" in state.replica.last_io_error:
        return "its replication stopped with error 1236 (binlogs purged on its master)"
    own = GtidPosition.parse(state.gtid_slave_pos)
    for gtid in GtidPosition.parse(state.gtid_binlog_pos).by_domain.values():
        if gtid.seq > own.seq(gtid.domain):
            own.by_domain[gtid.domain] = gtid
    if not own.contains(primary_oldest):
        return f"it is at '{own}' and the primary's binlogs start after '{primary_oldest}'"
    return ""


def oldest_binlog_gtids(address: ServerAddress, admin: Credential) -> GtidPosition:
    """The Gtid_list event of the primary's oldest binlog: what its binlogs no longer hold."""
    with session(address, admin, timeout=3) as conn:
        logs = query(conn, "SHOW BINARY LOGS")
        if not logs:
            return GtidPosition()
        events = query(conn, f"SHOW BINLOG EVENTS IN '{logs[0]['Log_name']}' LIMIT 4")
    for ev in events:
        if ev.get("Event_type") == "Gtid_list":
            info = str(ev.get("Info") or "").strip("[] ")
            return GtidPosition.parse(info)
    return GtidPosition()


def choose_source(req: SeedRequest) -> ServerAddress:
    """A healthy replica of the primary, least behind; the primary when there is none."""
    if req.source is not None:
        return req.source
    best: tuple[int, ServerAddress] | None = None
    for member in req.members:
        if member in (req.target, req.primary):
            continue
        s = read_state(member, req.admin, timeout=2)
        if not (s.reachable and s.replica and s.replica.healthy and s.replica.master == req.primary):
            continue
        lag = s.replica.seconds_behind if s.replica.seconds_behind is not None else 1 << 30
        if best is None or lag < best[0]:
            best = (lag, member)
    return best[1] if best else req.primary


def _options_file(directory: Path, server_cnf: Path, admin: Credential) -> Path:
    """The source's my.cnf plus the admin login in a 0600 file: the password never
    appears in a command line or an environment (mariadb-backup takes one defaults file)."""
    fd, name = tempfile.mkstemp(prefix="seed-", suffix=".cnf", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(server_cnf.read_text())
        f.write(f"\n[client]\nuser={admin.user}\npassword={admin.password}\n")
    return Path(name)


_TELLING = ("error", "fatal", "was only able", "try increasing", "failed")


def _tail(path: Path) -> str:
    """The log line that says what went wrong (mariadb-backup ends with shutdown chatter)."""
    try:
        lines = [l.strip() for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no log"
    telling = [l for l in lines if any(w in l.lower() for w in _TELLING)]
    return (telling or lines or ["no output"])[-1][-300:]


def stream_backup(source: ServerAddress, source_paths: LocalServerPaths, admin: Credential,
                  dest: Path, log: Path, progress: Progress) -> int:
    """``mariadb-backup --backup --stream=xbstream`` piped into ``mbstream -x``; returns bytes."""
    dest.mkdir(parents=True)
    creds = _options_file(dest.parent, source_paths.cnf, admin)
    try:
        backup_cmd = [
            BACKUP_TOOL, f"--defaults-file={creds}",
            "--backup", "--stream=xbstream", f"--host={source.host}", f"--port={source.port}",
            f"--target-dir={dest}", "--parallel=2",
        ]
        with open(log, "ab") as err:
            backup = subprocess.Popen(backup_cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
            extract = subprocess.Popen([STREAM_TOOL, "-x", "-C", str(dest)], stdin=subprocess.PIPE,
                                       stdout=err, stderr=err)
            copied = _pump(backup, extract, progress)
            backup.wait()
            extract.wait()
    finally:
        creds.unlink(missing_ok=True)
    if backup.returncode != 0:
        raise RuntimeError(f"{BACKUP_TOOL} exited with {backup.returncode}: {_tail(log)}")
    if extract.returncode != 0:
        raise RuntimeError(f"{STREAM_TOOL} exited with {extract.returncode}: {_tail(log)}")
    return copied


def _pump(backup: subprocess.Popen[bytes], extract: subprocess.Popen[bytes], progress: Progress) -> int:
    """Move the stream between the two pipes (``splice``: no copy through Python) and count it."""
    out, into = backup.stdout, extract.stdin
    if out is None or into is None:
        raise ValueError("_pump: start the backup with stdout=PIPE and the extract with stdin=PIPE")
    src, dst = out.fileno(), into.fileno()
    copied, started, last = 0, time.monotonic(), time.monotonic()
    try:
        while True:
            try:
                n = os.splice(src, dst, CHUNK)
            except OSError:
                data = os.read(src, CHUNK)
                n = len(data)
                if n:
                    os.write(dst, data)
            if n == 0:
                break
            copied += n
            now = time.monotonic()
            if now - last >= 2.0:
                progress(f"  {copied / 2**20:.0f} MiB copied ({copied / 2**20 / (now - started):.0f} MiB/s)")
                last = now
    except BrokenPipeError:
        backup.kill()
    finally:
        out.close()
        into.close()
    elapsed = max(time.monotonic() - started, 1e-6)
    progress(f"  {copied / 2**20:.0f} MiB copied in {elapsed:.1f}s ({copied / 2**20 / elapsed:.0f} MiB/s)")
    return copied


def prepare_backup(dest: Path, log: Path) -> None:
    with open(log, "ab") as err:
        done = subprocess.run([BACKUP_TOOL, "--prepare", f"--target-dir={dest}", "--use-memory=256M"],
                              stdout=err, stderr=err, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{BACKUP_TOOL} --prepare exited with {done.returncode}: {_tail(log)}")


def backup_gtid(dest: Path) -> str:
    """The GTID the backup is consistent with (the source's binlog position at the lock)."""
    for name in ("mariadb_backup_binlog_info", "xtrabackup_binlog_info"):
        info = dest / name
        if info.is_file():
            fields = info.read_text().split()
            return fields[2] if len(fields) >= 3 else ""
    raise RuntimeError("the backup records no binlog position (mariadb_backup_binlog_info missing)")


def install_datadir(target: ServerAddress, paths: LocalServerPaths, prepared: Path) -> None:
    """Stop the node and swap its datadir for the prepared one; the old one is removed
    only once the node runs on the new data (a failed start puts the old one back)."""
    stop_server(paths)
    old = paths.datadir.with_name("data.replaced")
    shutil.rmtree(old, ignore_errors=True)
    if paths.datadir.exists():
        paths.datadir.rename(old)
    prepared.rename(paths.datadir)
    try:
        start_server(paths, target.host, target.port)
    except BaseException:
        stop_server(paths)
        shutil.rmtree(paths.datadir, ignore_errors=True)
        if old.exists():
            old.rename(paths.datadir)
            start_server(paths, target.host, target.port)
        raise
    shutil.rmtree(old, ignore_errors=True)


def attach(req: SeedRequest, gtid: str) -> None:
    from repman.bootstrap import change_master_sql, replica_net_timeout, replica_tls_ca  # bootstrap imports this module

    with session(req.target, req.admin, timeout=5) as conn:
        execute(conn, "STOP SLAVE")
        execute(conn, "RESET SLAVE ALL")
        execute(conn, "SET GLOBAL read_only = ON")
        execute(conn, "RESET MASTER")  # no binlog of its own: the copy's history is the source's
        execute(conn, "SET GLOBAL gtid_slave_pos = %s", (gtid,))
        execute(conn, f"SET GLOBAL slave_net_timeout = {replica_net_timeout(req.heartbeat_period)}")
        sql, args = change_master_sql(req.primary, req.replication, req.heartbeat_period, req.connect_retry,
                                      replica_tls_ca(conn, req.replication_ssl))
        execute_unlogged(conn, sql, args)  # MASTER_PASSWORD stays out of the general and slow logs
        execute(conn, f"SET GLOBAL rpl_semi_sync_slave_enabled = {'ON' if req.semisync else 'OFF'}")
        execute(conn, "SET GLOBAL rpl_semi_sync_master_enabled = OFF")
        execute(conn, "START SLAVE")


def catch_up(req: SeedRequest) -> None:
    with session(req.primary, req.admin, timeout=5) as conn:
        target = str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or "")
    with session(req.target, req.admin, timeout=5, read_timeout=req.wait_timeout + 5) as conn:
        res = query(conn, "SELECT MASTER_GTID_WAIT(%s, %s) AS w", (target, req.wait_timeout))[0]["w"]
    if res != 0:
        s = read_state(req.target, req.admin)
        err = (s.replica.last_io_error or s.replica.last_sql_error) if s.replica else "not replicating"
        raise RuntimeError(f"did not reach {target} within {req.wait_timeout:.0f}s: {err}")


def settle(replica: ServerAddress, primary: ServerAddress, admin: Credential, timeout: float) -> None:
    with session(primary, admin, timeout=3) as conn:
        target = str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or "")
    with session(replica, admin, timeout=3, read_timeout=timeout + 5) as conn:
        if query(conn, "SELECT MASTER_GTID_WAIT(%s, %s) AS w", (target, timeout))[0]["w"] != 0:
            raise RuntimeError(f"source {replica.url} did not catch up with {primary.url} in {timeout:.0f}s")


def seed_node(req: SeedRequest) -> SeedResult:
    """Replace ``req.target``'s data with a physical copy of a healthy member, then replicate."""
    seconds: dict[str, float] = {}
    step = "source"
    started = time.monotonic()

    def mark(name: str) -> None:
        nonlocal started
        seconds[name] = time.monotonic() - started
        started = time.monotonic()

    try:
        if req.target == req.primary:
            raise RuntimeError("refusing to seed the primary")
        source = choose_source(req)
        if source != req.primary:
            # A lagging source rewrites its redo log while the copy runs: let it catch up first.
            settle(source, req.primary, req.admin, req.wait_timeout)
        target_paths = LocalServerPaths(req.target_base) if req.target_base else local_paths(req.target, req.admin)
        if not target_paths.cnf.is_file():
            raise RuntimeError(f"no my.cnf in {target_paths.base}")
        source_paths = local_paths(source, req.admin)
        mark("source")
        work = target_paths.base / "seed"
        shutil.rmtree(work, ignore_errors=True)  # a previous interrupted attempt
        work.mkdir()
        log = work / "mariadb-backup.log"
        try:
            step = "stream"
            req.progress(f"seeding {req.target.url} from {source.url}: streaming a physical backup")
            copied = stream_backup(source, source_paths, req.admin, work / "data", log, req.progress)
            mark("stream")
            step = "prepare"
            req.progress(f"seeding {req.target.url}: preparing the backup")
            prepare_backup(work / "data", log)
            gtid = backup_gtid(work / "data")
            mark("prepare")
            step = "install"
            req.progress(f"seeding {req.target.url}: installing the copy (gtid {gtid})")
            install_datadir(req.target, target_paths, work / "data")
            mark("install")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        step = "attach"
        attach(req, gtid)
        step = "catch-up"
        catch_up(req)
        mark("catch-up")
    except SeedError:
        raise
    except (RepmanError, RuntimeError, OSError, pymysql.MySQLError) as exc:
        raise SeedError(req.target, step, str(exc) or type(exc).__name__) from exc
    req.progress(f"seeded {req.target.url} from {source.url} at {gtid}: replicating")
    return SeedResult(target=req.target, source=source, gtid=gtid, bytes_copied=copied, seconds=seconds)


def purge_binlogs(conn: pymysql.connections.Connection, timeout: float = 30.0) -> str:
    """Rotate and purge every binlog but the current one, as ``expire_logs_days`` would.
    Returns the remaining file. Used by tests and benchmarks to reproduce a real server's
    binlog history; MariaDB keeps a file until its binlog checkpoint has passed, hence the retry."""
    execute(conn, "FLUSH BINARY LOGS")
    current = str(query(conn, "SHOW BINARY LOGS")[-1]["Log_name"])
    deadline = time.monotonic() + timeout
    while True:
        execute(conn, f"PURGE BINARY LOGS TO '{current}'")
        if len(query(conn, "SHOW BINARY LOGS")) == 1:
            return current
        if time.monotonic() > deadline:
            raise RuntimeError(f"binlogs before {current} could not be purged in {timeout:.0f}s")
        time.sleep(0.2)


def reseed_member(cfg, target: ServerAddress, source: ServerAddress | None = None,
                  progress: Progress = lambda msg: None, base_dir: Path | None = None) -> SeedResult:
    """``repman reseed HOST:PORT``: rebuild a broken or diverged replica of a watched cluster."""
    from repman.watcher.checks import member, read_states
    from repman.watcher.primary import cluster_primary

    found = member(cfg, target)
    if found is None:
        raise RepmanError(f"{target.url} is not a server of cluster {cfg.name}")
    if source is not None and member(cfg, source) is None:
        raise RepmanError(f"--from {source.url} is not a server of cluster {cfg.name}")
    states = read_states(cfg)
    primary = cluster_primary(cfg, {a: s for a, s in states.items() if a != found})
    master = primary.address
    if master is None or not primary.decided:
        raise RepmanError(f"cannot reseed {found.url}: no primary ({primary.reason})")
    if master == found:
        raise RepmanError(f"{found.url} is the primary: switch over first, then reseed it")
    return seed_node(SeedRequest(
        target=found, primary=master, members=cfg.servers, admin=cfg.admin, replication=cfg.replication,
        semisync=cfg.flag("semisync"), heartbeat_period=cfg.seconds("replication-heartbeat-period"),
        source=member(cfg, source) if source is not None else None, progress=progress, target_base=base_dir,
        replication_ssl=cfg.flag("replication-use-ssl"),
    ))
