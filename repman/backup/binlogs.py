"""Continuous binlog archiving from the current primary, following failovers.

``mariadb-binlog --read-from-remote-server --raw --stop-never`` copies the
primary's binlog files as they grow into a *segment* folder. When the primary
changes (switchover, failover) or the copier dies, the segment is closed: its
last file is cut after the last complete transaction. A new segment starts on
the new primary right after the archive's last transaction, found by GTID in
the new primary's binlogs, so the archived GTIDs form one sequence with no gap
and no overlap. Transactions archived from a dead primary that its successor
never received (lost in the failover) are moved to ``orphans/``: the archive
only ever holds the cluster's history.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import zlib
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from repman.backup.binlogfile import Transaction, complete_end, transactions
from repman.backup.secretfiles import client_options
from repman.backup.tools import installed
from repman.db import Credential, ServerAddress, connect, query
from repman.errors import RepmanError
from repman.gtid import GtidPosition

Log = Callable[[str], None]


@dataclass
class Segment:
    index: int
    server: str
    start_file: str
    start_pos: int
    started_at: float
    closed: bool = False
    gap_before: bool = False   # the primary no longer had the binlogs following the archive

    @property
    def folder(self) -> str:
        return f"seg-{self.index:05d}-{self.server.replace(':', '_').replace('[', '').replace(']', '')}"


@dataclass(frozen=True)
class Piece:
    """A byte range of one archived file holding consecutive transactions."""

    path: Path
    start: int
    end: int
    first: str
    last: str


class BinlogArchive:
    """The archive on disk: segments in order, each a folder of raw binlog files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.manifest = self.root / "segments.json"

    def segments(self) -> list[Segment]:
        try:
            raw = json.loads(self.manifest.read_text())
        except FileNotFoundError:
            return []
        return [Segment(**s) for s in raw.get("segments", [])]

    def save(self, segments: list[Segment]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({"segments": [asdict(s) for s in segments]}, indent=2))
        os.replace(tmp, self.manifest)

    def files(self, seg: Segment) -> list[Path]:
        folder = self.root / seg.folder
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def transactions(self) -> list[tuple[Path, Transaction]]:
        out: list[tuple[Path, Transaction]] = []
        for seg in self.segments():
            for f in self.files(seg):
                out.extend((f, t) for t in transactions(f))
        return out

    def close(self, seg: Segment) -> None:
        files = self.files(seg)
        if files:
            last = files[-1]
            end = complete_end(last)
            if end < last.stat().st_size:
                with open(last, "r+b") as f:
                    f.truncate(end)
        seg.closed = True

    def cut_after(self, keep: tuple[Path, Transaction] | None) -> int:
        """Move everything after ``keep`` (None: everything) to ``orphans/``; returns transactions moved."""
        orphans = self.root / "orphans" / time.strftime("%Y%m%dT%H%M%S")
        moved = 0
        found = keep is None
        for seg in self.segments():
            for f in self.files(seg):
                txns = transactions(f)
                if found:
                    moved += len(txns)
                    orphans.mkdir(parents=True, exist_ok=True)
                    os.replace(f, orphans / f"{seg.folder}-{f.name}")
                    continue
                assert keep is not None
                if f == keep[0]:
                    found = True
                    tail = [t for t in txns if t.start >= keep[1].end]
                    if tail:
                        moved += len(tail)
                        orphans.mkdir(parents=True, exist_ok=True)
                        with open(f, "r+b") as src:
                            src.seek(keep[1].end)
                            (orphans / f"{seg.folder}-{f.name}.tail").write_bytes(src.read())
                            src.truncate(keep[1].end)
        return moved

    def prune_before(self, position: GtidPosition) -> int:
        """Delete archived files holding only transactions at or before ``position`` (the oldest
        backup kept): no restore can need them. The file being written is never touched."""
        segments = self.segments()
        last_file = self.files(segments[-1])[-1:] if segments else []
        removed = 0
        for seg in segments:
            for f in self.files(seg):
                if f in last_file:
                    continue
                txns = transactions(f)
                if txns and all(t.seq <= position.seq(t.domain) and t.domain in position.by_domain
                                for t in txns):
                    f.unlink()
                    removed += 1
        return removed

    def pieces(self, after: dict[int, int], stop: Callable[[Transaction], bool]) -> list[Piece]:
        """Byte ranges to replay: transactions past ``after`` (domain -> seq), up to ``stop``
        (the first transaction for which it is true is not included)."""
        out: list[Piece] = []
        for seg in self.segments():
            for f in self.files(seg):
                run: list[Transaction] = []
                for t in transactions(f):
                    if t.seq <= after.get(t.domain, 0):
                        continue
                    if stop(t):
                        if run:
                            out.append(Piece(f, run[0].start, run[-1].end, run[0].gtid, run[-1].gtid))
                        return out
                    run.append(t)
                if run:
                    out.append(Piece(f, run[0].start, run[-1].end, run[0].gtid, run[-1].gtid))
        return out


def sequence_problems(txns: list[Transaction]) -> list[str]:
    """Gaps and overlaps in the archived GTID sequence (per domain, seq must grow by one)."""
    problems: list[str] = []
    last: dict[int, Transaction] = {}
    for t in txns:
        prev = last.get(t.domain)
        if prev is not None and t.seq != prev.seq + 1:
            kind = "overlap" if t.seq <= prev.seq else "gap"
            problems.append(f"{kind}: {prev.gtid} followed by {t.gtid}")
        last[t.domain] = t
    return problems


def _file_transactions(conn, name: str) -> dict[str, tuple[str, int]]:
    """GTID -> (file, position after the transaction) for one binlog file of a server."""
    out: dict[str, tuple[str, int]] = {}
    current: tuple[str, bool] | None = None
    for ev in query(conn, f"SHOW BINLOG EVENTS IN '{name}'"):
        kind, info = ev["Event_type"], str(ev["Info"] or "")
        if kind == "Gtid":
            words = info.split()
            current = (words[-1], words[0] == "BEGIN")
            continue
        if current is None:
            continue
        gtid, trans = current
        if (not trans and kind == "Query") or kind == "Xid" or (
                trans and kind == "Query" and info.strip().upper() in ("COMMIT", "ROLLBACK")):
            out[gtid] = (name, int(ev["End_log_pos"]))
            current = None
    return out


def resume_point(address: ServerAddress, credential: Credential, archived: list[tuple[Path, Transaction]]
                 ) -> tuple[tuple[Path, Transaction] | None, str, int, str]:
    """Where a copier on ``address`` continues the archive: (the newest archived transaction the
    server also has, its binlog file, the position after it, the server's first binlog file).
    Binlog files are read newest first and the scan stops at the first file that holds an
    archived transaction, so a long binlog history is not read each time the primary changes."""
    with connect(address, credential, timeout=3, read_timeout=120) as conn:
        files = [r["Log_name"] for r in query(conn, "SHOW BINARY LOGS")]
        if not files:
            return None, "", 4, ""
        if not archived:
            return None, files[0], 4, files[0]
        seen: dict[str, tuple[str, int]] = {}
        newest_first = [item for item in reversed(archived)]
        for name in reversed(files):
            seen.update(_file_transactions(conn, name))
            for item in newest_first:
                if item[1].gtid in seen:
                    where = seen[item[1].gtid]
                    return item, where[0], where[1], files[0]
    return None, files[0], 4, files[0]


class BinlogArchiver:
    """Keeps one ``mariadb-binlog`` copier on the cluster's current primary."""

    def __init__(self, root: Path, credential: Credential, log: Log = lambda m: None,
                 connection_server_id: int | None = None) -> None:
        self.archive = BinlogArchive(root)
        self.credential = credential
        self.log = log
        self.server_id = connection_server_id or (4_000_000_000 + zlib.crc32(str(root).encode()) % 200_000_000)
        self._proc: subprocess.Popen | None = None
        self._files = ExitStack()
        self._server: ServerAddress | None = None
        self._mutex = threading.Lock()

    @property
    def server(self) -> ServerAddress | None:
        return self._server

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def follow(self, master: ServerAddress | None) -> None:
        """Copy from ``master``; switch segments when it changed or the copier died."""
        with self._mutex:
            if master is None:
                return
            if self.running() and self._server == master:
                return
            self._stop_copier()
            self._start(master)

    def _stop_copier(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        self._files.close()
        self._files = ExitStack()
        segments = self.archive.segments()
        for seg in segments:
            if not seg.closed:
                self.archive.close(seg)
        empty = [s for s in segments if not self.archive.files(s)]
        for seg in empty:   # a copier that died at once leaves nothing worth a segment
            shutil.rmtree(self.archive.root / seg.folder, ignore_errors=True)
        self.archive.save([s for s in segments if s not in empty])
        self._server = None

    def _start(self, master: ServerAddress) -> None:
        archived = self.archive.transactions()
        keep, start_file, start_pos, first_file = resume_point(master, self.credential, archived)
        gap = False
        if archived:
            moved = self.archive.cut_after(keep)
            if moved:
                self.log(f"binlog archive: {moved} transactions the new primary {master} never had "
                         f"moved to {self.archive.root / 'orphans'}")
            if keep is None:
                gap = True
                self.log(f"binlog archive: {master} no longer holds the binlogs following the archive; "
                         f"a gap starts at {archived[-1][1].gtid}")
        else:
            start_file, start_pos = first_file, 4
        if not start_file:
            raise RepmanError(f"binlog archive: {master} has no binary log (log_bin off?)")
        segments = self.archive.segments()
        seg = Segment(index=(segments[-1].index + 1) if segments else 1, server=master.url,
                      start_file=start_file, start_pos=start_pos, started_at=time.time(), gap_before=gap)
        folder = self.archive.root / seg.folder
        folder.mkdir(parents=True, exist_ok=True)
        self.archive.save(segments + [seg])
        cnf = self._files.enter_context(client_options(master, self.credential))
        err = self._files.enter_context(open(self.archive.root / "copier.log", "ab"))
        self._proc = subprocess.Popen(
            [installed("mariadb-binlog"), f"--defaults-extra-file={cnf}", "--read-from-remote-server", "--raw",
             "--stop-never", f"--stop-never-slave-server-id={self.server_id}", f"--result-file={folder}/",
             f"--start-position={start_pos}", start_file],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )
        self._server = master
        self.log(f"binlog archive: copying {master} from {start_file}:{start_pos} into {seg.folder}")

    def stop(self) -> None:
        with self._mutex:
            self._stop_copier()


class ArchiverThread:
    """Follows the cluster's primary by itself (one read of every server per interval)."""

    def __init__(self, cfg, root: Path | None = None, interval: float = 0.5, log: Log = lambda m: None) -> None:
        from repman.backup.settings import BackupSettings
        self.cfg = cfg
        self.root = Path(root) if root else BackupSettings.from_cluster(cfg).binlogs_dir
        self.archiver = BinlogArchiver(self.root, cfg.admin, log)
        self.interval = interval
        self.log = log
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"binlog-archiver-{cfg.name}", daemon=True)

    def _run(self) -> None:
        from repman.watcher.checks import read_states
        from repman.watcher.primary import cluster_primary
        while not self._stop.is_set():
            try:
                found = cluster_primary(self.cfg, read_states(self.cfg))
                master = found.address if found.decided else None
                self.archiver.follow(master)
            except Exception as exc:  # noqa: BLE001 - keep following; say why it failed
                self.log(f"binlog archive: {exc}")
            self._stop.wait(self.interval)

    def start(self) -> ArchiverThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(30)
        self.archiver.stop()
