"""Point-in-time restore: a physical backup (or a named mariadb-dump backup), then archived
binlogs up to a GTID or a time.

The target is a stopped local server (its folder holds my.cnf) or a fresh
folder (a new server is configured there). A server that answers on the target
address is never overwritten: restoring over a live member would destroy the
data the cluster serves. Steps: stream the backup out of the repository into
``mbstream``, ``mariadb-backup --prepare``, ``--move-back`` into the datadir,
start the server, set its GTID state to the backup's, then pipe the archived
transactions after that GTID through ``mariadb-binlog | mariadb``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from repman.backup.binlogfile import Transaction
from repman.backup.binlogs import BinlogArchive, Piece
from repman.backup.catalog import BackupRecord, Catalog
from repman.backup.repository import open_repository
from repman.backup.secretfiles import client_options
from repman.backup.settings import BackupSettings
from repman.backup.take import PHYSICAL_NAME
from repman.backup.tools import installed
from repman.db import Credential, ServerAddress, connect, execute, query
from repman.errors import OperationRefused, RepmanError
from repman.gtid import GtidPosition
from repman.local.mariadb import LocalServerPaths, read_pid, start_server, stop_server

Log = Callable[[str], None]
RESTORE_TAGS = ("gtidstrict", "row", "noquerycache", "smallredolog")


class RestoreError(RepmanError):
    """A restore failed; the message names the step."""


@dataclass
class RestoreResult:
    backup: str
    target: str
    gtid: str                    # the restored server's gtid_binlog_pos at the end
    replayed: int                # transactions applied from the archive
    seconds: dict[str, float] = field(default_factory=dict)   # per step
    backup_bytes: int = 0
    binlog_bytes: int = 0


def _answers(address: ServerAddress) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in address.host else socket.AF_INET) as s:
        s.settimeout(0.5)
        return s.connect_ex((address.host, address.port)) == 0


def _local_address(host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


def refuse_live_target(cfg, target: ServerAddress, folder: Path) -> None:
    """One-line refusals for targets a restore must never overwrite."""
    if not _local_address(target.host):
        raise OperationRefused(f"restore refused: {target.host} is not an address of this machine "
                               "(run the restore on the target's host)")
    if any(target == a for a in cfg.servers) and _answers(target):
        raise OperationRefused(f"restore refused: {target} is a live member of cluster {cfg.name}; "
                               "stop it (or pick a fresh --target and --datadir) first")
    if _answers(target):
        raise OperationRefused(f"restore refused: a server answers on {target}; stop it first")
    paths = LocalServerPaths(folder)
    if read_pid(paths):
        raise OperationRefused(f"restore refused: the server in {folder} is running; stop it first")


def choose_backup(records: list[BackupRecord], backup_id: str | None, to_gtid: GtidPosition | None,
                  to_time: float | None) -> BackupRecord:
    good = [r for r in records if r.type == "physical" and r.status == "ok"]
    if backup_id:
        match = next((r for r in records if r.id == backup_id), None)
        if match is None:
            raise RestoreError(f"backup {backup_id} is not in the catalog (see repman backups)")
        if match.status != "ok":
            raise RestoreError(f"backup {backup_id} is {match.status}; restore needs a good backup")
        if not match.gtid:
            raise RestoreError(f"backup {backup_id} has no recorded GTID position to replay from")
        return match
    if to_gtid is not None:
        good = [r for r in good if to_gtid.contains(GtidPosition.parse(r.gtid))]
    if to_time is not None:
        good = [r for r in good if r.end <= to_time]
    if not good:
        raise RestoreError("no good physical backup taken before the requested point")
    return max(good, key=lambda r: r.end)


def plan_replay(archive: BinlogArchive, start: GtidPosition, to_gtid: GtidPosition | None,
                to_time: float | None) -> list[Piece]:
    """The archived byte ranges to apply; refuses when the archive has a gap or misses the end."""
    after = {d: g.seq for d, g in start.by_domain.items()}
    done: dict[int, int] = dict(after)

    def stop(t: Transaction) -> bool:
        if to_gtid is not None and t.seq > to_gtid.seq(t.domain):
            return True
        if to_time is not None and t.timestamp + 1 > to_time:
            return True
        return False

    pieces = archive.pieces(after, stop)
    for piece in pieces:   # pieces are contiguous within themselves; check the joins
        d, _, n = (int(x) for x in piece.first.split("-"))
        if d in done and n != done[d] + 1:
            raise RestoreError(f"binlog archive gap: after {d}-?-{done[d]} the next archived "
                               f"transaction is {piece.first}")
        d, _, n = (int(x) for x in piece.last.split("-"))
        done[d] = n
    if to_gtid is not None:
        for d, g in to_gtid.by_domain.items():
            if done.get(d, 0) < g.seq:
                raise RestoreError(f"the binlog archive ends before {g} (archived up to "
                                   f"{d}-?-{done.get(d, 0)}); nothing was applied past the backup")
    return pieces


def _run(cmd: list[str], what: str, **kw) -> None:
    done = subprocess.run(cmd, capture_output=True, **kw)
    if done.returncode != 0:
        tail = (done.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise RestoreError(f"restore failed at {what}: {tail}")


def unpack_backup(settings: BackupSettings, record: BackupRecord, target_dir: Path) -> int:
    """The backup stream straight into ``mbstream -x`` (its stdin is the file or restic's pipe:
    no copy through Python); returns the backup's size."""
    repo = open_repository(settings)
    target_dir.mkdir(parents=True, exist_ok=True)
    with repo.open_stream(record.location, record.name or PHYSICAL_NAME) as stream:
        done = subprocess.run([installed("mbstream"), "-x", "-C", str(target_dir)], stdin=stream, capture_output=True)
    if done.returncode != 0:
        raise RestoreError(f"restore failed at mbstream: {done.stderr.decode(errors='replace').strip()[-200:]}")
    return record.size


def replay(pieces: list[Piece], address: ServerAddress, credential: Credential) -> int:
    """``mariadb-binlog --start-position --stop-position FILE | mariadb`` for every piece, one session.
    Diagnostics go to files: a tool blocked on a full stderr pipe would stall the whole pipe."""
    if not pieces:
        return 0
    size = 0
    with client_options(address, credential) as cnf, tempfile.TemporaryFile() as client_err, \
            tempfile.TemporaryFile() as reader_err:
        client = subprocess.Popen([installed("mariadb"), f"--defaults-extra-file={cnf}", "--binary-mode"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=client_err)
        assert client.stdin is not None
        failed = ""
        try:
            for p in pieces:
                size += p.end - p.start
                reader = subprocess.Popen([installed("mariadb-binlog"), f"--start-position={p.start}",
                                           f"--stop-position={p.end}", str(p.path)],
                                          stdout=subprocess.PIPE, stderr=reader_err)
                assert reader.stdout is not None
                try:
                    shutil.copyfileobj(reader.stdout, client.stdin, 1 << 20)
                finally:
                    reader.stdout.close()
                if reader.wait() != 0:
                    reader_err.seek(0)
                    failed = f"mariadb-binlog {p.path.name}: {reader_err.read().decode(errors='replace')[-200:]}"
                    break
        except BrokenPipeError:
            pass
        finally:
            try:
                client.stdin.close()
            except BrokenPipeError:
                pass
            code = client.wait()
        if failed:
            raise RestoreError(f"restore failed at {failed}")
        if code != 0:
            client_err.seek(0)
            text = client_err.read().decode(errors="replace").strip()
            raise RestoreError(f"restore failed replaying binlogs: {text[-300:]}")
    return size


@contextmanager
def _fast_commits(address: ServerAddress, credential: Credential) -> Iterator[None]:
    """No fsync per replayed commit: a restore cut short is redone from the start anyway,
    so per-transaction durability buys nothing until it ends; the settings come back after."""
    names = ("innodb_flush_log_at_trx_commit", "sync_binlog")
    with connect(address, credential, timeout=5) as conn:
        before = {n: query(conn, f"SELECT @@GLOBAL.{n} AS v")[0]["v"] for n in names}
        execute(conn, "SET GLOBAL innodb_flush_log_at_trx_commit = 2")
        execute(conn, "SET GLOBAL sync_binlog = 0")
    try:
        yield
    finally:
        with connect(address, credential, timeout=5) as conn:
            for n, v in before.items():
                execute(conn, f"SET GLOBAL {n} = %s", (int(v),))
            execute(conn, "FLUSH BINARY LOGS")   # the replayed binlog is on disk before we say done


def _local_config(folder: Path, target: ServerAddress, server_id: int, plan: str, credential: Credential) -> None:
    """A my.cnf for a fresh folder (kept as is for a stopped server that has one)."""
    from repman.local.node import LocalNodeSpec, render_node_config
    paths = LocalServerPaths(folder)
    paths.make_dirs()
    if paths.cnf.is_file():
        return
    spec = LocalNodeSpec(base_dir=str(folder), server_id=server_id, port=target.port, host=target.host,
                         plan=plan, tags=list(RESTORE_TAGS), admin_user=credential.user,
                         admin_password=credential.password)
    paths.cnf.write_text(render_node_config(spec))


def restore(cfg, target: ServerAddress, folder: Path, to_gtid: str | None = None, to_time: float | None = None,
            backup_id: str | None = None, server_id: int = 0, plan: str = "x1.tiny",
            log: Log = lambda m: None, settings: BackupSettings | None = None) -> RestoreResult:
    """The physical backup, then the archive up to ``to_gtid`` or ``to_time``, into ``folder``."""
    try:
        return _restore(cfg, target, folder, to_gtid, to_time, backup_id, server_id, plan, log, settings)
    except FileNotFoundError as exc:   # a tool is missing: say which, no traceback
        raise RestoreError(f"restore failed: {exc.filename or exc} not found") from None


def _move_aside(folder: Path, log: Log) -> None:
    paths = LocalServerPaths(folder)
    if paths.datadir.exists() and any(paths.datadir.iterdir()):
        aside = folder / f"data.before-restore-{time.strftime('%Y%m%dT%H%M%S')}"
        paths.datadir.rename(aside)
        log(f"the stopped server's datadir was moved to {aside}")


def _physical_into(settings: BackupSettings, record: BackupRecord, folder: Path, target: ServerAddress,
                   server_id: int, plan: str, admin: Credential, times: dict[str, float], log: Log) -> int:
    """mbstream, --prepare, --move-back, start: the server as it was at the backup's GTID."""
    paths = LocalServerPaths(folder)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="repman-restore-", dir=folder.parent) as tmp:
        work = Path(tmp) / "backup"
        size = unpack_backup(settings, record, work)
        times["unpack"] = time.monotonic() - t0
        t = time.monotonic()
        _run(["mariadb-backup", "--prepare", f"--target-dir={work}"], "mariadb-backup --prepare")
        times["prepare"] = time.monotonic() - t
        t = time.monotonic()
        _move_aside(folder, log)
        _local_config(folder, target, server_id, plan, admin)
        _run(["mariadb-backup", f"--defaults-file={paths.cnf}", "--move-back", f"--target-dir={work}",
              f"--datadir={paths.datadir}"], "mariadb-backup --move-back")
        times["move_back"] = time.monotonic() - t
    t = time.monotonic()
    start_server(paths, target.host, target.port)
    times["start"] = time.monotonic() - t
    return size


def _logical_into(settings: BackupSettings, record: BackupRecord, folder: Path, target: ServerAddress,
                  server_id: int, plan: str, admin: Credential, times: dict[str, float], log: Log) -> int:
    """A fresh datadir, then the mariadb-dump file loaded over the unix socket (not binlogged)."""
    from repman.local.mariadb import initialise_datadir
    if record.tool != "mysqldump":
        raise RestoreError(f"backup {record.id} was taken with {record.tool}; restore loads mariadb-dump "
                           "backups (load a mydumper folder with myloader)")
    paths = LocalServerPaths(folder)
    _move_aside(folder, log)
    _local_config(folder, target, server_id, plan, admin)
    t = time.monotonic()
    initialise_datadir(paths)
    start_server(paths, target.host, target.port)
    times["start"] = time.monotonic() - t
    t = time.monotonic()
    repo = open_repository(settings)
    with repo.open_stream(record.location, record.name) as stream:
        done = subprocess.run([installed("mariadb"), f"--socket={paths.socket}", "--user=root", "--binary-mode",
                               "--init-command=SET SESSION sql_log_bin=0"], stdin=stream, capture_output=True)
    if done.returncode != 0:
        stop_server(paths)
        raise RestoreError(f"restore failed loading the dump: {done.stderr.decode(errors='replace').strip()[-200:]}")
    times["load"] = time.monotonic() - t
    return record.size


def _restore(cfg, target: ServerAddress, folder: Path, to_gtid: str | None, to_time: float | None,
             backup_id: str | None, server_id: int, plan: str, log: Log,
             settings: BackupSettings | None) -> RestoreResult:
    if (to_gtid is None) == (to_time is None):
        raise RestoreError("give exactly one of --to-gtid and --to-time")
    settings = settings or BackupSettings.from_cluster(cfg)
    folder = Path(folder).resolve()
    socket_path = str(LocalServerPaths(folder).socket)
    if len(socket_path) > 107:   # the kernel's limit for a unix socket path: mariadbd would not start
        raise RestoreError(f"--datadir {folder} is too deep: its socket path would be {len(socket_path)} "
                           "characters (at most 107)")
    refuse_live_target(cfg, target, folder)
    want = GtidPosition.parse(to_gtid) if to_gtid else None
    record = choose_backup(Catalog.at(settings.state_dir).load(), backup_id, want, to_time)
    archive = BinlogArchive(settings.binlogs_dir)
    pieces = plan_replay(archive, GtidPosition.parse(record.gtid), want, to_time)
    log(f"restore {target} from backup {record.id} (GTID {record.gtid}), then {len(pieces)} binlog ranges")
    paths = LocalServerPaths(folder)
    times: dict[str, float] = {}
    t0 = time.monotonic()
    sid = server_id or 9000 + target.port % 1000
    if record.type == "physical":
        size = _physical_into(settings, record, folder, target, sid, plan, cfg.admin, times, log)
    else:
        size = _logical_into(settings, record, folder, target, sid, plan, cfg.admin, times, log)
    try:
        with connect(target, cfg.admin, timeout=5) as conn:
            execute(conn, "SET GLOBAL read_only = 0")
            if record.gtid:
                execute(conn, "RESET MASTER")
                execute(conn, "SET GLOBAL gtid_binlog_state = %s", (record.gtid,))
                execute(conn, "SET GLOBAL gtid_slave_pos = %s", (record.gtid,))
        t = time.monotonic()
        with _fast_commits(target, cfg.admin):
            binlog_bytes = replay(pieces, target, cfg.admin)
        times["replay"] = time.monotonic() - t
        with connect(target, cfg.admin, timeout=5) as conn:
            gtid = str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS g")[0]["g"])
            execute(conn, "SET GLOBAL gtid_slave_pos = %s", (gtid,))
    except BaseException:
        stop_server(paths)   # leave no half-restored server running
        raise
    times["total"] = time.monotonic() - t0
    replayed = 0
    for p in pieces:
        d, _, first = (int(x) for x in p.first.split("-"))
        replayed += int(p.last.split("-")[2]) - first + 1
    log(f"restored {target}: GTID {gtid}, {replayed} transactions replayed in {times['total']:.1f}s")
    return RestoreResult(record.id, target.url, gtid, replayed, times, size, binlog_bytes)
