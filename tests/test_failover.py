"""Failover after kill -9 on real mariadbd clusters: nothing acknowledged is lost, limits hold."""

from __future__ import annotations

import time

from repman.watcher.failover import failover
from repman.watcher.rejoin import rejoin
from repman.watcher.state_store import StateStore
from testkit.env import needs_mariadb

pytestmark = needs_mariadb


def test_failover_after_kill9_with_semisync_loses_no_acknowledged_write(cluster_factory):
    c = cluster_factory(semisync=True, tags=("gtidstrict", "row", "readonly", "noquerycache", "smallredolog"))
    old = c.primary()
    w = c.writer(pause=0.0).start()
    try:
        w.wait_acks(200)
        c.bed.kill(old)
        res = failover(c.cfg, c.store, c.log)
        assert res.ok, res.sentence
        assert res.old_primary == old and res.new_primary != old
        w.wait_acks(100)
    finally:
        w.stop()
    new = c.primary()
    assert new == res.new_primary
    survivors = [a for a in c.servers if a != old]
    c.assert_converged(survivors)
    lost, unexpected = w.verify(new)
    assert not lost, f"acknowledged writes lost: {sorted(lost)[:10]}"
    assert not unexpected, sorted(unexpected)[:10]
    state = c.store.load()
    assert state.failover_count == 1 and state.crashes[-1].kind == "failover"
    assert state.crashes[-1].old_master == old.url and state.crashes[-1].failover_pos
    assert c.var(new, "rpl_semi_sync_master_enabled") == "1"

    # The old master returns (read-only from its my.cnf) and rejoins: by GTID, or by flashback
    # when it had binlogged a transaction no replica acknowledged before it died.
    c.bed.start(old)
    back = rejoin(c.cfg, c.store, old, c.log)
    assert back.ok, back.sentence
    c.assert_converged()
    lost, unexpected = w.verify(old)
    assert not lost and not unexpected
    assert c.var(old, "read_only") == "1" and c.var(old, "rpl_semi_sync_master_enabled") == "0"


def test_failover_limit_and_time_limit_refuse_then_allow(cluster_factory):
    c = cluster_factory(failover_limit=1)
    s1 = c.primary()
    c.sql(s1, "CREATE DATABASE app")
    c.sql(s1, "CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB")
    c.sql(s1, "INSERT INTO app.t VALUES (1)")
    c.assert_converged()

    res = failover(c.cfg, c.store, c.log)             # the master is alive
    assert not res.ok and "answers" in res.sentence
    assert c.primary() == s1 and not c.store.load().crashes

    c.bed.kill(s1)
    first = failover(c.cfg, c.store, c.log)
    assert first.ok, first.sentence
    s2 = first.new_primary
    (s3,) = [a for a in c.servers if a not in (s1, s2)]
    c.sql(s2, "INSERT INTO app.t VALUES (2)")
    c.assert_converged([s2, s3])                      # async: make sure s3 got it before the crash
    c.bed.kill(s2)

    res = failover(c.cfg, c.store, c.log)
    assert not res.ok and "failover-limit 1 reached" in res.sentence
    c.set(failover_limit=0, failover_time_limit=3600)
    # The counter survives a watcher restart: a fresh store object reads the same file.
    fresh = StateStore(c.cfg.state_dir)
    res = failover(c.cfg, fresh, c.log)
    assert not res.ok and "failover-time-limit" in res.sentence
    assert c.var(s3, "read_only") == "1"               # refusals changed nothing
    c.set(failover_time_limit=0)
    second = failover(c.cfg, fresh, c.log)
    assert second.ok, second.sentence
    assert second.new_primary == s3
    assert fresh.load().failover_count == 2
    assert {r["id"] for r in c.sql(s3, "SELECT id FROM app.t")} == {1, 2}

    for old in (s1, s2):
        c.bed.start(old)
        back = rejoin(c.cfg, fresh, old, c.log)
        assert back.ok, back.sentence
    c.assert_converged()


def test_killed_replica_then_killed_master_both_rejoin(cluster_factory):
    c = cluster_factory(semisync=True)
    master = c.primary()
    replica, other = c.replicas()
    for addr in c.servers:      # alone after both deaths, the new master waits this long for an ack
        c.sql(addr, "SET GLOBAL rpl_semi_sync_master_timeout = 1000")
    w = c.writer().start()
    try:
        w.wait_acks(50)
        c.bed.kill(replica)
        w.wait_acks(50)
        c.bed.kill(master)
        res = failover(c.cfg, c.store, c.log)
        assert res.ok, res.sentence
        assert res.new_primary == other
        w.wait_acks(50)
        # Both come back; the replica resumes from the returning old master, which then looks
        # like a root with a follower: the crash record still names the real master.
        c.bed.start(replica)
        c.bed.start(master)
        c.wait_for(lambda: (c.sql(replica, "SHOW SLAVE STATUS") or [{}])[0].get("Slave_IO_Running") == "Yes",
                   what="the replica to reconnect to the old master")
        r2 = rejoin(c.cfg, c.store, master, c.log)
        assert r2.ok, r2.sentence
        r1 = rejoin(c.cfg, c.store, replica, c.log)
        assert r1.ok, r1.sentence
        w.wait_acks(50)
    finally:
        w.stop()
    primary = c.assert_converged()
    assert primary == other
    lost, unexpected = w.verify(primary)
    assert not lost and not unexpected
    assert time.time() - c.store.load().last_failover_at < 600


def test_failover_starts_the_event_scheduler_the_dead_master_ran(cluster_factory):
    from repman.watcher.monitor import ClusterMonitor

    c = cluster_factory(monitoring_ticker=0.3)
    old = c.primary()
    c.sql(old, "SET GLOBAL event_scheduler = ON")
    mon = ClusterMonitor(c.cfg, log=c.log, act=True, routers=[])
    try:
        mon.tick()                                         # the monitor records what the master runs
    finally:
        mon.close()
    assert c.store.load().master_event_scheduler is True
    c.bed.kill(old)
    res = failover(c.cfg, c.store, c.log)
    assert res.ok, res.sentence
    new = res.new_primary
    assert c.var(new, "event_scheduler") == "ON"
    other = next(a for a in c.servers if a not in (old, new))
    assert c.var(other, "event_scheduler") == "OFF"
    assert c.store.load().crashes[-1].event_scheduler is True
    c.bed.start(old)
    c.sql(old, "SET GLOBAL event_scheduler = ON")         # as if its my.cnf turned it on
    back = rejoin(c.cfg, c.store, old, c.log)
    assert back.ok, back.sentence
    assert c.var(old, "event_scheduler") == "OFF"        # a rejoined old master runs no events
    c.assert_converged()
