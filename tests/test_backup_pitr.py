"""Backups, binlog archiving across a switchover and a kill -9 failover, and point-in-time restore,
on real mariadbd / mariadb-backup / mariadb-binlog; every restore is checked row by row against
the writers' records of acknowledged inserts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from repman.backup.binlogs import ArchiverThread, BinlogArchive, sequence_problems
from repman.backup.catalog import Catalog
from repman.backup.restore import plan_replay, restore
from repman.backup.take import take_backup
from repman.db import ServerAddress
from repman.errors import OperationRefused
from repman.gtid import GtidPosition
from repman.lab.writer import TABLE
from repman.local.mariadb import LocalServerPaths, stop_server
from repman.local.ports import free_port_block
from repman.watcher.failover import failover
from repman.watcher.rejoin import rejoin
from repman.watcher.switchover import switchover
from testkit.backup import DURABLE_TAGS, exact, row_ids, wait_archived
from testkit.env import needs_mariadb

pytestmark = [needs_mariadb, pytest.mark.slow]
def test_backup_under_writes_archive_across_a_switchover_and_two_failovers_then_pitr(cluster_factory, tmp_path):
    c = cluster_factory(semisync=True, tags=DURABLE_TAGS, preferred=0)
    s1, s2, s3 = c.servers
    events: list[str] = []
    archiver = ArchiverThread(c.cfg, interval=0.2, log=events.append).start()
    restored: list[Path] = []
    try:
        w1 = c.writer("w1", pause=0.001).start()
        try:
            w1.wait_acks(300)
            t0 = time.monotonic()
            backup = take_backup(c.cfg, "physical", log=events.append)
            t1 = time.monotonic()
            w1.wait_acks(20)
            assert w1.gaps(t0, t1) < 1.0, f"writes stalled {w1.gaps(t0, t1):.2f}s during the backup"
            assert backup.status == "ok" and backup.gtid and backup.size > 0
            assert backup.server != s1.url, "the backup must come from a replica, not the primary"
            w1.wait_acks(100)
            dump = take_backup(c.cfg, "logical")
            assert dump.status == "ok" and dump.gtid and dump.server != s1.url
            w1.wait_acks(100)
            sw = switchover(c.cfg, c.store, c.log, to=s2)
            assert sw.ok, sw.sentence
            w1.wait_acks(200)
            c.bed.kill(s2)
            fo = failover(c.cfg, c.store, c.log)
            assert fo.ok, fo.sentence
            w1.wait_acks(200)
            # The killed server comes back as a replica, then the new primary dies too.
            c.bed.start(s2)
            back = rejoin(c.cfg, c.store, s2, c.log)
            assert back.ok, back.sentence
            w1.wait_acks(100)
            c.wait_for(lambda: c.sql(s2, "SHOW SLAVE STATUS")[0]["Seconds_Behind_Master"] == 0,
                       what=f"{s2} caught up after its rejoin")
            second = c.primary()
            c.bed.kill(second)
            fo2 = failover(c.cfg, c.store, c.log)
            assert fo2.ok, fo2.sentence
            w1.wait_acks(200)
        finally:
            w1.stop()
        primary = c.primary()
        mid = c.var(primary, "gtid_binlog_pos")
        w2 = c.writer("w2", pause=0.001).start(base=10_000_000)
        try:
            w2.wait_acks(200)
        finally:
            w2.stop()
        # A time boundary between w2 and w3 (binlog timestamps are whole seconds).
        time.sleep(1.2 - (time.time() % 1.0))
        cut = float(int(time.time()))
        time.sleep(0.3)
        w3 = c.writer("w3", pause=0.001).start(base=20_000_000)
        try:
            w3.wait_acks(100)
        finally:
            w3.stop()
        end = c.var(primary, "gtid_binlog_pos")
        wait_archived(archiver.archiver.archive, end)
    finally:
        archiver.stop()
    try:
        archive = BinlogArchive(archiver.root)
        segments = archive.segments()
        assert len(segments) >= 4, f"expected a segment per primary, got {segments} ({events})"
        assert {seg.server for seg in segments} >= {s1.url, s2.url, second.url, primary.url}
        txns = [t for _, t in archive.transactions()]
        assert sequence_problems(txns) == [], sequence_problems(txns)[:5]
        assert txns[0].seq == 1 and str(GtidPosition.parse(txns[-1].gtid)) == str(GtidPosition.parse(end))

        # Restore to the end: exactly the primary's data.
        def target(name: str) -> tuple[ServerAddress, Path]:
            folder = tmp_path / name
            restored.append(folder)
            return ServerAddress("127.0.0.1", free_port_block(1)), folder

        addr, folder = target("to-end")
        res = restore(c.cfg, addr, folder, to_gtid=end)
        assert GtidPosition.parse(res.gtid) == GtidPosition.parse(end)
        assert res.replayed > 0
        for w in (w1, w2, w3):
            exact(c, addr, w)
        assert c.sql(addr, f"CHECKSUM TABLE {TABLE}")[0]["Checksum"] == \
            c.sql(primary, f"CHECKSUM TABLE {TABLE}")[0]["Checksum"]

        # To a GTID: w1's rows exactly, none of w2 or w3.
        addr, folder = target("to-gtid")
        res = restore(c.cfg, addr, folder, to_gtid=mid)
        assert GtidPosition.parse(res.gtid) == GtidPosition.parse(mid)
        exact(c, addr, w1)
        assert not row_ids(c, addr, "w2") and not row_ids(c, addr, "w3")

        # To a time: w1 and w2 exactly, none of w3.
        addr, folder = target("to-time")
        restore(c.cfg, addr, folder, to_time=cut)
        exact(c, addr, w1)
        exact(c, addr, w2)
        assert not row_ids(c, addr, "w3")

        # From the logical backup (mariadb-dump loaded into a fresh server), then the archive.
        addr, folder = target("from-dump")
        res = restore(c.cfg, addr, folder, to_gtid=end, backup_id=dump.id)
        assert GtidPosition.parse(res.gtid) == GtidPosition.parse(end) and "load" in res.seconds
        for w in (w1, w2, w3):
            exact(c, addr, w)

        # Into a stopped member: its own my.cnf is kept, its old datadir moved aside.
        member = next(a for a in c.servers if a != primary and c.bed.running(a))
        node = c.bed.node(member)
        stop_server(node.paths)
        res = restore(c.cfg, member, Path(node.base_dir), to_gtid=end)
        assert GtidPosition.parse(res.gtid) == GtidPosition.parse(end)
        assert list(Path(node.base_dir).glob("data.before-restore-*")), "the old datadir was not kept aside"
        assert c.var(member, "server_id") == str(node.server_id)
        for w in (w1, w2, w3):
            exact(c, member, w)

        # Over a live member of the cluster: refused, nothing touched.
        with pytest.raises(OperationRefused, match="live member"):
            restore(c.cfg, primary, tmp_path / "never", to_gtid=end)
        assert not (tmp_path / "never").exists()
        assert Catalog.at(c.cfg.state_dir).get(backup.id).status == "ok"
    finally:
        for folder in restored:
            stop_server(LocalServerPaths(folder))


def test_archived_transactions_the_new_primary_never_had_are_moved_to_orphans(cluster_factory):
    """Async replica cut off (IO thread stopped), the primary commits more, the archive copies it,
    the primary dies: the promoted replica never had those transactions, so the archive gives them
    up (orphans/) and goes on from the new primary's history with one contiguous GTID sequence."""
    c = cluster_factory(count=2, tags=DURABLE_TAGS, preferred=0)
    s1, s2 = c.servers
    archiver = ArchiverThread(c.cfg, interval=0.1).start()
    try:
        w = c.writer("w", pause=0.001).start()
        try:
            w.wait_acks(100)
        finally:
            w.stop()
        wait_archived(archiver.archiver.archive, c.var(s1, "gtid_binlog_pos"))
        c.sql(s2, "STOP SLAVE IO_THREAD")
        kept_pos = c.var(s2, "gtid_current_pos")
        c.sql(s1, f"INSERT INTO {TABLE} (id, writer, at) SELECT seq, 'lost', NOW(6) FROM mysql.seq_900000_to_900049")
        for i in range(20):
            c.sql(s1, f"INSERT INTO {TABLE} (id, writer, at) VALUES ({800000 + i}, 'lost', NOW(6))")
        lost_end = c.var(s1, "gtid_binlog_pos")
        wait_archived(archiver.archiver.archive, lost_end)
        c.bed.kill(s1)
        c.sql(s2, "STOP SLAVE")
        c.sql(s2, "RESET SLAVE ALL")
        c.sql(s2, "SET GLOBAL read_only = 0")
        w2 = c.writer("w2", pause=0.001).start(base=5_000_000)
        try:
            w2.wait_acks(100)
        finally:
            w2.stop()
        wait_archived(archiver.archiver.archive, c.var(s2, "gtid_binlog_pos"))
    finally:
        archiver.stop()
    archive = BinlogArchive(archiver.root)
    txns = [t for _, t in archive.transactions()]
    assert sequence_problems(txns) == []
    gtids = {t.gtid for t in txns}
    kept = GtidPosition.parse(kept_pos)
    only_dead = [t.gtid for t in txns if t.gtid.split("-")[1] == "1" and t.seq > kept.seq(0)]
    assert not only_dead, f"transactions only the dead primary had stayed in the archive: {only_dead[:5]}"
    assert str(GtidPosition.parse(txns[-1].gtid)) == str(GtidPosition.parse(c.var(s2, "gtid_binlog_pos")))
    orphans = archive.root / "orphans"
    assert orphans.is_dir() and any(orphans.rglob("*")), "the cut transactions were not kept aside"
    assert len(gtids) == len(txns)
    # Retention of the archive: files wholly before a kept point go, the rest still replays.
    assert archive.prune_before(kept) >= 1
    left = [t for _, t in archive.transactions()]
    assert left and left[0].seq <= kept.seq(0) + 1 and sequence_problems(left) == []
    pieces = plan_replay(archive, kept, GtidPosition.parse(c.var(s2, "gtid_binlog_pos")), None)
    assert pieces and pieces[0].first.endswith(f"-{kept.seq(0) + 1}")
