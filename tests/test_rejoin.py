"""Rejoin of a returning old master: by GTID, by flashback, by dump, or quarantine."""

from __future__ import annotations

import pytest

from repman.watcher.failover import failover
from repman.watcher.rejoin import rejoin
from testkit.env import needs_mariadb

pytestmark = needs_mariadb


def _seed(c) -> None:
    master = c.primary()
    c.sql(master, "CREATE DATABASE app")
    c.sql(master, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    c.sql(master, "INSERT INTO app.t SELECT seq, 0 FROM mysql.seq_1_to_10")
    c.assert_converged()


def _local_commits(c, statements: list[str]) -> None:
    """Commits on the master that no replica receives (and no semi-sync ack waits for)."""
    master = c.primary()
    for r in c.replicas():
        c.sql(r, "STOP SLAVE IO_THREAD")
    c.sql(master, "SET GLOBAL rpl_semi_sync_master_enabled = OFF")
    for stmt in statements:
        c.sql(master, stmt)


def _ids(c, addr) -> dict[int, int]:
    return {r["id"]: r["v"] for r in c.sql(addr, "SELECT id, v FROM app.t")}


def test_rejoin_by_gtid_fences_a_writable_old_master_first(cluster_factory):
    c = cluster_factory()
    _seed(c)
    old = c.primary()
    c.bed.kill(old)
    res = failover(c.cfg, c.store, c.log)
    assert res.ok, res.sentence
    new = res.new_primary
    c.sql(new, "INSERT INTO app.t VALUES (11, 11)")

    c.bed.start(old)
    c.sql(old, "SET GLOBAL read_only = OFF")          # came back writable: two masters for a moment
    c.set(autorejoin=False)
    refused = rejoin(c.cfg, c.store, old, c.log)
    assert not refused.ok and "autorejoin is off" in refused.sentence
    assert c.var(old, "read_only") == "1", "a returning old master must be fenced before anything else"
    assert any("fenced" in line for line in c.lines)

    c.set(autorejoin=True)
    back = rejoin(c.cfg, c.store, old, c.log)
    assert back.ok, back.sentence
    assert "by GTID" in back.sentence
    assert rejoin(c.cfg, c.store, old, c.log).sentence.endswith(f"already replicates from {new.url}")
    c.assert_converged()
    assert _ids(c, old)[11] == 11


@pytest.mark.parametrize("semisync", [False, True], ids=["async", "semisync"])
def test_rejoin_by_flashback_after_unacknowledged_local_commits(cluster_factory, semisync):
    c = cluster_factory(semisync=semisync)
    _seed(c)
    old = c.primary()
    _local_commits(c, [
        "INSERT INTO app.t VALUES (101, 1), (102, 2)",
        "UPDATE app.t SET v = 99 WHERE id = 1",
        "DELETE FROM app.t WHERE id = 2",
    ])
    extra_pos = c.var(old, "gtid_binlog_pos")
    c.bed.kill(old)
    res = failover(c.cfg, c.store, c.log)
    assert res.ok, res.sentence
    new = res.new_primary
    c.sql(new, "UPDATE app.t SET v = 5 WHERE id = 1")
    c.sql(new, "INSERT INTO app.t VALUES (201, 201)")

    c.bed.start(old)
    back = rejoin(c.cfg, c.store, old, c.log)
    assert back.ok, back.sentence
    assert "flashback" in back.sentence
    c.assert_converged()
    rows = _ids(c, old)
    assert rows[1] == 5 and rows[2] == 0 and 101 not in rows and 102 not in rows and rows[201] == 201
    saved = list((c.cfg.state_dir / "rejoin").glob("*-extra.binlog.sql"))
    assert len(saved) == 1
    text = saved[0].read_text()
    last = extra_pos.split("-")[-1]
    assert f"-{last}" in text.splitlines()[0]        # the header lists every saved GTID
    assert "### INSERT INTO `app`.`t`" in text       # readable and replayable


def test_quarantine_when_flashback_impossible_then_rejoin_by_dump(cluster_factory):
    c = cluster_factory()
    _seed(c)
    old = c.primary()
    _local_commits(c, [
        "CREATE TABLE app.extra (id INT PRIMARY KEY)",     # DDL cannot be flashed back
        "INSERT INTO app.t VALUES (101, 1)",
    ])
    c.bed.kill(old)
    res = failover(c.cfg, c.store, c.log)
    assert res.ok, res.sentence
    new = res.new_primary
    c.sql(new, "INSERT INTO app.t VALUES (201, 201)")

    c.bed.start(old)
    back = rejoin(c.cfg, c.store, old, c.log)
    assert not back.ok
    assert "quarantined" in back.sentence and "DDL" in back.sentence
    assert old.url in c.store.load().quarantined
    assert c.var(old, "read_only") == "1"
    status = c.sql(old, "SHOW SLAVE STATUS")
    assert not status or status[0]["Slave_SQL_Running"] == "No"
    again = rejoin(c.cfg, c.store, old, c.log)
    assert not again.ok and "is quarantined" in again.sentence

    c.store.release(old.url)
    c.set(autorejoin_mysqldump=True)
    seeded = rejoin(c.cfg, c.store, old, c.log)
    assert seeded.ok, seeded.sentence
    assert "re-seeded" in seeded.sentence
    c.assert_converged()
    tables = {r["t"] for r in c.sql(old, "SELECT table_name AS t FROM information_schema.tables "
                                         "WHERE table_schema = 'app'")}
    assert tables == {"t"}
    rows = _ids(c, old)
    assert 101 not in rows and rows[201] == 201


def test_replica_that_missed_a_switchover_rejoins_without_repair(cluster_factory):
    c = cluster_factory()
    _seed(c)
    c.primary()  # decided before the replica goes away
    late, s2 = c.replicas()
    c.bed.kill(late)
    from repman.watcher.switchover import switchover
    res = switchover(c.cfg, c.store, c.log, to=s2)
    assert res.ok, res.sentence
    c.sql(s2, "INSERT INTO app.t VALUES (11, 11)")
    c.bed.start(late)                                  # still follows s1, now itself a replica of s2
    c.wait_for(lambda: c.sql(late, "SELECT COUNT(*) AS n FROM app.t WHERE id = 11")[0]["n"] == 1,
               what="the chained replica to receive the new row")
    back = rejoin(c.cfg, c.store, late, c.log)
    assert back.ok, back.sentence
    assert "by GTID" in back.sentence and not list((c.cfg.state_dir / "rejoin").glob("*"))
    c.assert_converged()


def test_killed_replica_holding_events_the_new_master_never_got_is_flashed_back(cluster_factory):
    c = cluster_factory()
    _seed(c)
    m = c.primary()
    ahead, behind = c.replicas()
    c.sql(behind, "STOP SLAVE IO_THREAD")
    c.sql(m, "INSERT INTO app.t VALUES (101, 1)")
    c.sql(m, "UPDATE app.t SET v = 7 WHERE id = 3")
    c.wait_for(lambda: c.sql(ahead, "SELECT COUNT(*) AS n FROM app.t WHERE id = 101")[0]["n"] == 1,
               what="the first replica to apply the extra rows")
    c.bed.kill(ahead)
    c.bed.kill(m)
    res = failover(c.cfg, c.store, c.log)
    assert res.ok and res.new_primary == behind, res.sentence
    c.sql(behind, "INSERT INTO app.t VALUES (201, 201)")

    c.bed.start(ahead)                                 # follows the dead master, holds 2 lost events
    back = rejoin(c.cfg, c.store, ahead, c.log)
    assert back.ok, back.sentence
    assert "flashback" in back.sentence
    c.bed.start(m)
    back = rejoin(c.cfg, c.store, m, c.log)
    assert back.ok, back.sentence
    c.assert_converged()
    rows = _ids(c, ahead)
    assert 101 not in rows and rows[3] == 0 and rows[201] == 201
