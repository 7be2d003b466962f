"""Soak (REPMAN_SOAK=1): the binlog archive under many switchovers and kill -9 failovers with
rejoins, backups taken along the way; at the end the archive is one contiguous GTID sequence and a
restore from the first and from the last backup both hold exactly the acknowledged rows."""

from __future__ import annotations

import os

import pytest

from repman.backup.binlogs import ArchiverThread, BinlogArchive, sequence_problems
from repman.backup.restore import restore
from repman.backup.take import take_backup
from repman.db import ServerAddress
from repman.gtid import GtidPosition
from repman.local.mariadb import LocalServerPaths, stop_server
from repman.local.ports import free_port_block
from repman.watcher.failover import failover
from repman.watcher.rejoin import rejoin
from repman.watcher.switchover import switchover
from testkit.backup import DURABLE_TAGS, exact, wait_archived
from testkit.env import needs_mariadb

pytestmark = [needs_mariadb, pytest.mark.slow, pytest.mark.soak,
              pytest.mark.skipif(os.environ.get("REPMAN_SOAK") != "1", reason="soak run: set REPMAN_SOAK=1")]
ROUNDS = int(os.environ.get("REPMAN_SOAK_ROUNDS", "8"))


def test_archive_and_pitr_survive_many_switchovers_and_failovers(cluster_factory, tmp_path):
    c = cluster_factory(semisync=True, tags=DURABLE_TAGS, backup_keep_last=100)
    archiver = ArchiverThread(c.cfg, interval=0.2).start()
    folders = []
    try:
        w = c.writer("soak", pause=0.001).start()
        try:
            w.wait_acks(200)
            backups = [take_backup(c.cfg, "physical")]
            for i in range(ROUNDS):
                if i % 2 == 0:
                    res = switchover(c.cfg, c.store, c.log)
                else:
                    dead = c.primary()
                    c.bed.kill(dead)
                    res = failover(c.cfg, c.store, c.log)
                    assert res.ok, res.sentence
                    c.bed.start(dead)
                    res = rejoin(c.cfg, c.store, dead, c.log)
                assert res.ok, f"round {i}: {res.sentence}"
                w.wait_acks(150)
                if i == ROUNDS // 2:
                    backups.append(take_backup(c.cfg, "physical"))
        finally:
            w.stop()
        end = c.var(c.primary(), "gtid_binlog_pos")
        wait_archived(archiver.archiver.archive, end, timeout=60)
    finally:
        archiver.stop()
    txns = [t for _, t in BinlogArchive(archiver.root).transactions()]
    assert sequence_problems(txns) == []
    for n, b in enumerate((backups[0], backups[-1])):
        folder = tmp_path / f"r{n}"
        folders.append(folder)
        addr = ServerAddress("127.0.0.1", free_port_block(1))
        try:
            res = restore(c.cfg, addr, folder, to_gtid=end, backup_id=b.id)
            assert GtidPosition.parse(res.gtid) == GtidPosition.parse(end)
            exact(c, addr, w)
        finally:
            stop_server(LocalServerPaths(folder))
