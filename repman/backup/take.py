"""Take one backup of a cluster: physical (mariadb-backup, streamed) or logical (dump).

The source is a healthy replica by default, so the primary never carries the
backup's I/O or locks; the primary is used only when no replica is healthy
(a one-node cluster). The stream goes straight from the tool into the
repository: nothing is staged on local disk. The GTID position the backup is
consistent with is recorded in the catalog (read from the tool's own output).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from repman.backup.catalog import BackupRecord, Catalog, new_backup_id
from repman.backup.repository import ByteSource, Repository, open_repository
from repman.backup.retention import expired
from repman.backup.secretfiles import client_options
from repman.backup.settings import BackupSettings
from repman.db import Credential, ServerAddress, connect, query
from repman.errors import RepmanError

Log = Callable[[str], None]
PHYSICAL_NAME = "backup.xbstream"
LOGICAL_NAME = "dump.sql"
_MB_GTID = re.compile(r"MySQL binlog position: filename '([^']*)', position '(\d+)', GTID of the last change '([^']*)'")
_MB_SLAVE_GTID = re.compile(r"MySQL slave binlog position: gtid_slave_pos '([^']*)'")
_DUMP_GTID = re.compile(rb"gtid_slave_pos\s*=\s*'([^']*)'")
_DUMP_FILE = re.compile(rb"MASTER_LOG_FILE='([^']*)', MASTER_LOG_POS=(\d+)")


class BackupError(RepmanError):
    """A backup failed; the message names the server and the step."""


@dataclass
class Source:
    address: ServerAddress
    role: str           # replica | primary


def choose_source(cfg, prefer: ServerAddress | None = None) -> Source:
    """A healthy replica (threads running, least lag), else the primary."""
    from repman.watcher.checks import read_states
    from repman.watcher.primary import cluster_primary
    states = read_states(cfg)
    found = cluster_primary(cfg, states)
    master = found.address if found.decided else None
    if prefer is not None:
        return Source(prefer, "primary" if prefer == master else "replica")
    replicas = []
    for addr, st in states.items():
        if addr == master or not st.reachable or st.replica is None or not st.replica.healthy:
            continue
        replicas.append((st.replica.seconds_behind if st.replica.seconds_behind is not None else 1e9, addr))
    if replicas:
        return Source(sorted(replicas)[0][1], "replica")
    if master is None:
        raise BackupError(f"cluster {cfg.name}: no reachable primary or healthy replica to back up")
    return Source(master, "primary")


def _tail(path: Path, lines: int = 1) -> str:
    """The tool's last error line (its last lines are often shutdown notes), else its last line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    errors = [l for l in text if "[ERROR]" in l or " Error " in l or l.startswith(("Error", "mariadb-backup: Error"))
              or "failed" in l.lower()]
    return " | ".join((errors or text)[-lines:]) or "no output"


def _stream_into(repo: Repository, backup_id: str, name: str, cmd: list[str], stderr_path: Path,
                 watched: list[_Watched] | None = None) -> tuple[str, int, int]:
    """Run ``cmd`` and stream its stdout into the repository; (location, size, exit code)."""
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    source: ByteSource = proc.stdout
    if watched is not None:
        wrapped = _Watched(proc.stdout)
        watched.append(wrapped)
        source = wrapped
    try:
        location, size = repo.put_stream(backup_id, name, source)
    finally:
        proc.stdout.close()
        code = proc.wait()
    return location, size, code


class _Watched:
    """A reader that keeps the first and last bytes of the stream (a dump states its GTID
    position in a header comment and again at the end)."""

    def __init__(self, inner: IO[bytes], keep: int = 1 << 16) -> None:
        self.inner, self.keep, self.head, self.tail = inner, keep, b"", b""

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        if data:
            if len(self.head) < self.keep:
                self.head += data[: self.keep - len(self.head)]
            self.tail = (self.tail + data)[-self.keep:]
        return data


def _datadir(address: ServerAddress, credential: Credential) -> str:
    with connect(address, credential, timeout=3) as conn:
        return str(query(conn, "SELECT @@GLOBAL.datadir AS d")[0]["d"])


def physical(address: ServerAddress, credential: Credential, repo: Repository, record: BackupRecord,
             work: Path) -> None:
    """mariadb-backup --backup --stream=xbstream from ``address`` (on this host) into the repository."""
    datadir = _datadir(address, credential)
    target = work / "mariabackup-target"
    target.mkdir(parents=True, exist_ok=True)
    with client_options(address, credential, groups=("client", "mariadb-backup")) as cnf:
        cmd = ["mariadb-backup", f"--defaults-extra-file={cnf}", "--backup", "--stream=xbstream",
               f"--datadir={datadir}", f"--target-dir={target}", "--slave-info", "--parallel=2"]
        location, size, code = _stream_into(repo, record.id, PHYSICAL_NAME, cmd, work / "mariabackup.log")
    log_text = (work / "mariabackup.log").read_text(errors="replace")
    if code != 0 or "completed OK!" not in log_text:
        raise BackupError(f"physical backup of {address} failed at mariadb-backup: {_tail(work / 'mariabackup.log')}")
    match = _MB_GTID.search(log_text)
    if match:
        record.binlog_file, record.binlog_pos, record.gtid = match.group(1), int(match.group(2)), match.group(3)
    slave = _MB_SLAVE_GTID.search(log_text)
    if slave and slave.group(1):
        # On a replica what it applied from the primary is the cluster's position; its own binlog
        # holds the same GTIDs only with log_slave_updates.
        record.gtid = slave.group(1)
    record.location, record.size, record.name = location, size, PHYSICAL_NAME


def logical_dump(address: ServerAddress, credential: Credential, repo: Repository, record: BackupRecord,
                 work: Path) -> None:
    """mariadb-dump --single-transaction --gtid: consistent without locking InnoDB writes."""
    watched: list[_Watched] = []
    with client_options(address, credential) as cnf:
        cmd = ["mariadb-dump", f"--defaults-extra-file={cnf}", "--single-transaction", "--gtid",
               "--master-data=2", "--all-databases", "--routines", "--events", "--triggers",
               "--hex-blob", "--flush-privileges"]
        location, size, code = _stream_into(repo, record.id, LOGICAL_NAME, cmd, work / "dump.log", watched)
    if code != 0:
        raise BackupError(f"logical backup of {address} failed at mariadb-dump: {_tail(work / 'dump.log')}")
    seen = watched[0].head + b"\n" + watched[0].tail
    if (m := _DUMP_GTID.search(seen)):
        record.gtid = m.group(1).decode()
    if (m := _DUMP_FILE.search(seen)):
        record.binlog_file, record.binlog_pos = m.group(1).decode(), int(m.group(2))
    record.location, record.size, record.name = location, size, LOGICAL_NAME


def logical_mydumper(address: ServerAddress, credential: Credential, repo: Repository, record: BackupRecord,
                     work: Path) -> None:
    """mydumper into a private folder, then that folder into the repository."""
    out = work / "mydumper"
    with client_options(address, credential) as cnf:
        cmd = ["mydumper", f"--defaults-file={cnf}", "--host", address.host, "--port", str(address.port),
               "--outputdir", str(out), "--triggers", "--events", "--routines", "--threads", "2",
               "--regex", r"^(?!(mysql\.|sys\.|performance_schema\.|information_schema\.))"]
        with open(work / "mydumper.log", "wb") as err:
            code = subprocess.run(cmd, stdout=err, stderr=err, stdin=subprocess.DEVNULL).returncode
    if code != 0:
        raise BackupError(f"logical backup of {address} failed at mydumper: {_tail(work / 'mydumper.log')}")
    meta = (out / "metadata").read_text(errors="replace") if (out / "metadata").is_file() else ""
    m = re.search(r"GTID:\s*(\S+)", meta)
    record.gtid = m.group(1) if m else ""
    m = re.search(r"Log:\s*(\S+)\s+Pos:\s*(\d+)", meta)
    if m:
        record.binlog_file, record.binlog_pos = m.group(1), int(m.group(2))
    record.location, record.size = repo.put_dir(record.id, out)
    record.name = "mydumper"


def take_backup(cfg, kind: str, log: Log = lambda m: None, source: ServerAddress | None = None,
                settings: BackupSettings | None = None) -> BackupRecord:
    """Take a ``physical`` or ``logical`` backup of the cluster, record it, apply retention."""
    if kind not in ("physical", "logical"):
        raise BackupError(f"backup type {kind!r} is not physical or logical")
    settings = settings or BackupSettings.from_cluster(cfg)
    with _one_at_a_time(settings.state_dir, kind):
        return _take(cfg, kind, log, source, settings)


@contextmanager
def _one_at_a_time(state_dir: Path, kind: str) -> Iterator[None]:
    """One backup of a kind per cluster, across processes (watcher jobs and the CLI)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / f"backup-{kind}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"a {kind} backup of this cluster is already running") from None
        yield
    finally:
        os.close(fd)


def _take(cfg, kind: str, log: Log, source: ServerAddress | None, settings: BackupSettings) -> BackupRecord:
    repo = open_repository(settings)
    repo.init()
    catalog = Catalog.at(settings.state_dir)
    src = choose_source(cfg, source)
    tool = "mariabackup" if kind == "physical" else settings.logical_type
    record = BackupRecord(id=new_backup_id(kind), type=kind, tool=tool, server=src.address.url,
                          start=time.time(), repository=repo.description, pid=os.getpid())
    catalog.put(record)
    log(f"{kind} backup {record.id} from {src.role} {src.address} into {repo.description}")
    with tempfile.TemporaryDirectory(prefix="repman-backup-") as tmp:
        work = Path(tmp)
        try:
            if kind == "physical":
                physical(src.address, cfg.admin, repo, record, work)
            elif tool == "mydumper":
                logical_mydumper(src.address, cfg.admin, repo, record, work)
            else:
                logical_dump(src.address, cfg.admin, repo, record, work)
        except BaseException as exc:
            record.status, record.end, record.error = "failed", time.time(), str(exc) or type(exc).__name__
            catalog.put(record)
            _keep_logs(work, settings.state_dir / "backup-logs", record.id)
            if isinstance(exc, RepmanError):
                raise
            raise BackupError(f"{kind} backup of {src.address} failed: {exc}") from exc
    record.status, record.end = "ok", time.time()
    catalog.put(record)
    log(f"{kind} backup {record.id} done: {record.size} bytes, GTID {record.gtid or 'unknown'}")
    apply_retention(settings, repo, catalog, kind, log)
    return record


def _keep_logs(work: Path, into: Path, backup_id: str) -> None:
    """A failed backup's tool output, kept for the post-mortem (the work folder is removed)."""
    try:
        for log_file in work.glob("*.log"):
            into.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_file, into / f"{backup_id}-{log_file.name}")
    except OSError:
        pass


def apply_retention(settings: BackupSettings, repo: Repository, catalog: Catalog, kind: str,
                    log: Log = lambda m: None) -> list[str]:
    """Forget the backups of ``kind`` the backup-keep-* policy no longer keeps."""
    good = [(r.id, r.end) for r in catalog.load() if r.type == kind and r.status == "ok"
            and r.repository == repo.description]
    drop = set(expired(good, settings.keep))
    if not drop:
        return []
    records = {r.id: r for r in catalog.load()}
    repo.remove([records[i].location for i in drop if records[i].location])

    def change(rs: list[BackupRecord]) -> None:
        for r in rs:
            if r.id in drop:
                r.status = "removed"
    catalog.update(change)
    log(f"retention removed {len(drop)} {kind} backups")
    if kind == "physical":
        oldest = min((r for r in catalog.load() if r.type == "physical" and r.status == "ok" and r.gtid),
                     key=lambda r: r.end, default=None)
        if oldest is not None:
            from repman.backup.binlogs import BinlogArchive
            from repman.gtid import GtidPosition
            pruned = BinlogArchive(settings.binlogs_dir).prune_before(GtidPosition.parse(oldest.gtid))
            if pruned:
                log(f"binlog archive: {pruned} files older than backup {oldest.id} removed")
    return sorted(drop)
