"""Point-in-time restore benchmark: restore time per GB and binlog replay rate (prints figures).

One run on a real 2-node cluster: a table of --size-mb is loaded, the binlog
archiver follows the primary, a physical backup is taken from the replica, then
--txns single-row transactions are committed (what the replay must apply).
``repman``'s restore (repository -> mbstream -> --prepare -> --move-back ->
start -> archived binlogs piped through mariadb-binlog | mariadb) is timed step
by step, and in the same run the raw tool pipeline on the same backup and the
same binlog byte ranges (``mbstream -x``, ``mariadb-backup --prepare``,
``--copy-back``, ``mariadb-binlog ... | mariadb`` in a shell) for comparison.
Both restored servers run the same durable my.cnf; repman relaxes the per-commit
fsync during its replay only (``innodb_flush_log_at_trx_commit=2``, ``sync_binlog=0``,
restored afterwards), the raw pipeline keeps them as an operator would.

Usage: .venv/bin/python bench/pitr.py [--size-mb 256] [--txns 20000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT  # noqa: E402,F401
from repman.backup.binlogs import ArchiverThread, BinlogArchive  # noqa: E402
from repman.backup.restore import RESTORE_TAGS, plan_replay, restore  # noqa: E402
from repman.backup.secretfiles import client_options  # noqa: E402
from repman.backup.take import take_backup  # noqa: E402
from repman.db import ServerAddress, connect, execute, query  # noqa: E402
from repman.gtid import GtidPosition  # noqa: E402
from repman.local.mariadb import LocalServerPaths, start_server, stop_server  # noqa: E402
from repman.local.node import LocalNodeSpec, render_node_config  # noqa: E402
from repman.local.ports import free_port_block  # noqa: E402
from testkit.cluster import make_cluster  # noqa: E402
from testkit.polling import wait_until  # noqa: E402

TAGS = ("gtidstrict", "row", "readonly", "noquerycache", "smallredolog")


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def load(cluster, size_mb: int) -> None:
    primary = cluster.primary()
    with connect(primary, cluster.bed.admin, read_timeout=600) as conn:
        execute(conn, "CREATE DATABASE IF NOT EXISTS bench")
        execute(conn, "USE bench")
        execute(conn, "CREATE TABLE bench.big (id BIGINT PRIMARY KEY AUTO_INCREMENT, pad CHAR(250) NOT NULL) "
                      "ENGINE=InnoDB")
        execute(conn, "INSERT INTO bench.big (pad) SELECT REPEAT('x', 250) FROM seq_1_to_10000")
        rows = size_mb * 1024 * 1024 // 300
        while query(conn, "SELECT COUNT(*) AS n FROM bench.big")[0]["n"] < rows:
            execute(conn, "INSERT INTO bench.big (pad) SELECT pad FROM bench.big LIMIT %s",
                    (rows - query(conn, "SELECT COUNT(*) AS n FROM bench.big")[0]["n"],))
        execute(conn, "CREATE TABLE bench.tx (id BIGINT PRIMARY KEY, v VARCHAR(200))")


def commit_many(cluster, count: int, threads: int = 4) -> None:
    primary = cluster.primary()

    def run(k: int) -> None:
        with connect(primary, cluster.bed.admin) as conn:
            for i in range(k, count, threads):
                execute(conn, "INSERT INTO bench.tx VALUES (%s, REPEAT('v', 200))", (i,))
    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def raw_pipeline(cluster, record, settings_dir: Path, pieces, work: Path) -> dict[str, float]:
    """The same restore with the tools alone, from the same backup file and byte ranges."""
    out: dict[str, float] = {}
    stream = settings_dir / "backups" / record.location / record.name
    target = work / "raw-backup"
    target.mkdir(parents=True)
    t = time.monotonic()
    subprocess.run(f"mbstream -x -C {target} < {stream}", shell=True, check=True)
    out["unpack"] = time.monotonic() - t
    t = time.monotonic()
    subprocess.run(["mariadb-backup", "--prepare", f"--target-dir={target}"], check=True, capture_output=True)
    out["prepare"] = time.monotonic() - t
    port = free_port_block(1)
    spec = LocalNodeSpec(base_dir=str(work / "raw-server"), server_id=77, port=port, plan="x1.tiny",
                         tags=list(RESTORE_TAGS), admin_user="repman", admin_password="x")
    paths = spec.paths
    paths.make_dirs()
    paths.cnf.write_text(render_node_config(spec))
    t = time.monotonic()
    subprocess.run(["mariadb-backup", f"--defaults-file={paths.cnf}", "--copy-back", f"--target-dir={target}",
                    f"--datadir={paths.datadir}"], check=True, capture_output=True)
    out["copy_back"] = time.monotonic() - t
    t = time.monotonic()
    start_server(paths, "127.0.0.1", port)
    out["start"] = time.monotonic() - t
    try:
        addr = ServerAddress("127.0.0.1", port)
        with connect(addr, cluster.bed.admin) as conn:
            execute(conn, "RESET MASTER")
            execute(conn, "SET GLOBAL gtid_binlog_state = %s", (record.gtid,))
        with client_options(addr, cluster.bed.admin) as cnf:
            script = "{ " + "; ".join(
                f"mariadb-binlog --start-position={p.start} --stop-position={p.end} {p.path}" for p in pieces
            ) + f"; }} | mariadb --defaults-extra-file={cnf} --binary-mode"
            t = time.monotonic()
            subprocess.run(script, shell=True, check=True)
            out["replay"] = time.monotonic() - t
        with connect(addr, cluster.bed.admin) as conn:
            out["gtid"] = query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS g")[0]["g"]  # type: ignore[assignment]
    finally:
        stop_server(paths)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=256, help="table size loaded before the backup")
    ap.add_argument("--txns", type=int, default=20000, help="transactions committed after the backup")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="repman-pitrbench-"))
    cluster = make_cluster(base, count=2, tags=TAGS)
    restored = base / "restored"
    try:
        load(cluster, args.size_mb)
        # The replica applies the load before the backup: the figures are about restoring, and a
        # replica in the middle of a 75 MB transaction makes the replay one huge transaction.
        target = cluster.var(cluster.primary(), "gtid_binlog_pos")
        replica = next(a for a in cluster.servers if a != cluster.primary())
        cluster.sql(replica, "SELECT MASTER_GTID_WAIT(%s, 300)", (target,))
        archiver = ArchiverThread(cluster.cfg, interval=0.2).start()
        t = time.monotonic()
        record = take_backup(cluster.cfg, "physical")
        backup_s = time.monotonic() - t
        t = time.monotonic()
        commit_many(cluster, args.txns)
        commit_s = time.monotonic() - t
        end = cluster.var(cluster.primary(), "gtid_binlog_pos")
        archive = BinlogArchive(archiver.root)

        def archived() -> bool:
            last = archive.transactions()[-1:]
            return bool(last) and GtidPosition.parse(last[0][1].gtid).contains(GtidPosition.parse(end))

        try:
            wait_until(archived, timeout=120, what=f"the archive to reach {end}", every=0.2)
        except AssertionError:
            raise SystemExit(f"archive did not reach {end}") from None
        archiver.stop()
        datadir = du(cluster.bed.nodes[1].paths.datadir)
        res = restore(cluster.cfg, ServerAddress("127.0.0.1", free_port_block(1)), restored, to_gtid=end)
        stop_server(LocalServerPaths(restored))
        pieces = plan_replay(archive, GtidPosition.parse(record.gtid), GtidPosition.parse(end), None)
        raw = raw_pipeline(cluster, record, cluster.cfg.state_dir, pieces, base / "raw")
        gb = record.size / 1e9
        ours_restore = sum(res.seconds[k] for k in ("unpack", "prepare", "move_back", "start"))
        raw_restore = sum(raw[k] for k in ("unpack", "prepare", "copy_back", "start"))  # type: ignore[misc]
        mb = res.binlog_bytes / 1e6
        print(f"dataset: replica datadir {datadir / 1e6:.0f} MB, physical backup {record.size / 1e6:.0f} MB "
              f"taken in {backup_s:.1f}s from {record.server}; {res.replayed} transactions "
              f"({mb:.1f} MB of binlog) committed in {commit_s:.1f}s after it")
        print(f"{'step':<12} {'repman s':>9} {'raw tools s':>12}")
        for ours, theirs in (("unpack", "unpack"), ("prepare", "prepare"), ("move_back", "copy_back"),
                             ("start", "start"), ("replay", "replay")):
            print(f"{ours:<12} {res.seconds[ours]:>9.2f} {raw[theirs]:>12.2f}")  # type: ignore[str-format]
        print(f"restore (backup -> running server): repman {ours_restore:.2f}s = {ours_restore / gb:.1f} s/GB; "
              f"raw {raw_restore:.2f}s = {raw_restore / gb:.1f} s/GB; ratio raw/repman "
              f"{raw_restore / ours_restore:.2f}")
        print(f"binlog replay: repman {res.replayed / res.seconds['replay']:.0f} txn/s "
              f"({mb / res.seconds['replay']:.1f} MB/s); raw {res.replayed / raw['replay']:.0f} txn/s "  # type: ignore[operator]
              f"({mb / raw['replay']:.1f} MB/s); ratio raw/repman {raw['replay'] / res.seconds['replay']:.2f}")  # type: ignore[operator]
        same = GtidPosition.parse(res.gtid) == GtidPosition.parse(str(raw["gtid"])) == GtidPosition.parse(end)
        print(f"both restores at the primary's GTID {end}: {'yes' if same else 'NO'}")
        return 0 if same else 1
    finally:
        stop_server(LocalServerPaths(restored))
        cluster.bed.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
