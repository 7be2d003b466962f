"""Switchover against real mariadbd clusters: writes keep their place, refusals change nothing."""

from __future__ import annotations

import threading
import time

import pymysql
import pytest

from repman.db import connect, execute
from repman.watcher.switchover import switchover
from testkit.env import needs_mariadb

pytestmark = needs_mariadb


def _assert_no_change(c, primary):
    """A refused switchover leaves the master writable and every replica healthy on it."""
    assert c.primary() == primary
    assert c.var(primary, "read_only") == "0"
    assert int(c.var(primary, "max_connections")) == 200
    assert not c.store.load().crashes


@pytest.mark.parametrize("semisync", [False, True], ids=["async", "semisync"])
def test_two_switchovers_under_writes_then_back_to_preferred(cluster_factory, semisync):
    c = cluster_factory(semisync=semisync, preferred=0)
    s1, s2, s3 = c.servers
    assert c.primary() == s1
    w = c.writer().start()
    try:
        w.wait_acks(50)
        first = switchover(c.cfg, c.store, c.log, to=s2)
        assert first.ok, first.sentence
        assert first.new_primary == s2 and first.old_primary == s1
        w.wait_acks(50)
        second = switchover(c.cfg, c.store, c.log)          # no target: back to the preferred master
        assert second.ok, second.sentence
        assert second.new_primary == s1
        w.wait_acks(50)
    finally:
        w.stop()
    assert c.primary() == s1
    primary = c.assert_converged()
    lost, unexpected = w.verify(primary)
    assert not lost, f"acknowledged writes lost: {sorted(lost)[:10]}"
    assert not unexpected, f"rows never acknowledged nor attempted: {sorted(unexpected)[:10]}"
    for addr in (s2, s3):
        assert c.var(addr, "read_only") == "1"
        assert c.var(addr, "rpl_semi_sync_master_enabled") == "0"
    assert c.var(s1, "rpl_semi_sync_master_enabled") == ("1" if semisync else "0")
    crashes = c.store.load().crashes
    assert [r.kind for r in crashes] == ["switchover", "switchover"]
    assert c.store.load().failover_count == 0


def test_preferred_master_restarting_its_io_thread_still_wins(cluster_factory):
    """A replica re-pointed a moment ago shows IO "Connecting"/"Preparing"; the switchover
    waits for it to settle instead of passing over the preferred master."""
    c = cluster_factory(preferred=0)
    s1, s2, s3 = c.servers
    assert c.primary() == s1
    for _ in range(5):
        res = switchover(c.cfg, c.store, c.log, to=s3)
        assert res.ok, res.sentence
        c.sql(s1, "STOP SLAVE IO_THREAD")
        c.sql(s1, "START SLAVE IO_THREAD")                  # the switchover reads it within moments
        res = switchover(c.cfg, c.store, c.log)
        assert res.ok, res.sentence
        assert res.new_primary == s1, res.steps
    c.assert_converged()


def test_refused_with_long_transaction_then_with_long_query(cluster_factory):
    c = cluster_factory(switchover_wait_write_query=1)
    master = c.primary()
    c.sql(master, "CREATE DATABASE app")
    c.sql(master, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    trx = connect(master, c.bed.admin, autocommit=False)
    try:
        execute(trx, "INSERT INTO app.t VALUES (1, 1)")
        time.sleep(1.2)
        res = switchover(c.cfg, c.store, c.log)
        assert not res.ok
        assert "transaction" in res.sentence and "switchover-wait-write-query" in res.sentence
        _assert_no_change(c, master)
    finally:
        trx.rollback()
        trx.close()

    # A write statement running long (it holds its transaction open too).
    runner = connect(master, c.bed.admin, read_timeout=60)
    done = threading.Event()

    def long_insert():
        try:
            execute(runner, "INSERT INTO app.t SELECT 2, SLEEP(4)")
        except pymysql.MySQLError:
            pass
        done.set()

    thread = threading.Thread(target=long_insert, daemon=True)
    thread.start()
    try:
        c.wait_for(lambda: c.sql(master, "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST "
                                          "WHERE INFO LIKE 'INSERT INTO app.t SELECT 2%%' AND TIME_MS > 1100")[0]["n"],
                   what="the long insert to age")
        res = switchover(c.cfg, c.store, c.log)
        assert not res.ok
        assert "query" in res.sentence and "INSERT INTO app.t" in res.sentence
        _assert_no_change(c, master)
    finally:
        thread.join(30)
        runner.close()
    # A candidate that cannot reach the frozen position in time: the old master thaws.
    c.sql(master, "SET GLOBAL event_scheduler = ON")
    c.set(switchover_wait_trx=1)
    target = c.replicas()[0]
    blocker = connect(target, c.bed.admin)
    try:
        execute(blocker, "FLUSH TABLES WITH READ LOCK")     # its SQL thread cannot apply anything
        c.sql(master, "INSERT INTO app.t VALUES (3, 3)")
        res = switchover(c.cfg, c.store, c.log, to=target)
        assert not res.ok
        assert "did not reach the frozen position" in res.sentence
        _assert_no_change(c, master)
        assert c.var(master, "event_scheduler") == "ON"
        c.sql(master, "INSERT INTO app.t VALUES (4, 4)")   # writable again, even for ordinary clients
    finally:
        blocker.close()
    c.sql(master, "SET GLOBAL event_scheduler = OFF")

    # Once the writes are gone the same switchover goes through.
    c.set(switchover_wait_trx=5)
    res = switchover(c.cfg, c.store, c.log)
    assert res.ok, res.sentence
    c.assert_converged()


def test_delayed_and_stopped_replicas_refused_with_checks_allowed_without(cluster_factory):
    c = cluster_factory(failover_max_slave_delay=1)
    master = c.primary()
    replicas = c.replicas()
    c.sql(master, "CREATE DATABASE app")
    c.sql(master, "CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB")
    c.assert_converged()

    # Delayed: each replica's SQL thread blocked behind a read lock while the master writes.
    locks = [connect(r, c.bed.admin) for r in replicas]
    try:
        for lock in locks:
            execute(lock, "FLUSH TABLES WITH READ LOCK")
        c.sql(master, "INSERT INTO app.t VALUES (1)")

        def lagging():
            return all(int(c.sql(r, "SHOW SLAVE STATUS")[0]["Seconds_Behind_Master"] or 0) >= 2 for r in replicas)
        c.wait_for(lagging, what="replicas to lag 2 s")
        res = switchover(c.cfg, c.store, c.log)
        assert not res.ok
        assert "failover-max-slave-delay" in res.sentence
        _assert_no_change(c, master)
    finally:
        for lock in locks:
            lock.close()
    c.assert_converged()

    # Stopped: every replica's threads stopped.
    for r in replicas:
        c.sql(r, "STOP SLAVE")
    res = switchover(c.cfg, c.store, c.log)
    assert not res.ok
    assert "thread stopped" in res.sentence
    _assert_no_change(c, master)

    # Same with the checks off: allowed, and replication restarted on the way.
    c.set(check_replication_state=False)
    c.sql(master, "INSERT INTO app.t VALUES (2)")
    res = switchover(c.cfg, c.store, c.log)
    assert res.ok, res.sentence
    assert res.new_primary in replicas
    c.assert_converged()
    assert {r["id"] for r in c.sql(res.new_primary, "SELECT id FROM app.t")} == {1, 2}


def test_read_only_state_scripts_and_chosen_target(cluster_factory, tmp_path):
    calls = tmp_path / "calls.txt"
    pre = tmp_path / "pre.sh"
    post = tmp_path / "post.sh"
    pre.write_text(f"#!/bin/sh\necho pre \"$@\" >> {calls}\nexit 0\n")
    post.write_text(f"#!/bin/sh\necho post \"$@\" >> {calls}\n")
    deny = tmp_path / "deny.sh"
    deny.write_text("#!/bin/sh\necho 'maintenance window closed'\nexit 3\n")
    for script in (pre, post, deny):
        script.chmod(0o755)
    c = cluster_factory(failover_readonly_state=False)
    s1, s2, s3 = c.servers

    c.set(failover_pre_script=str(deny))
    res = switchover(c.cfg, c.store, c.log, to=s3)
    assert not res.ok and "maintenance window closed" in res.sentence
    _assert_no_change(c, s1)

    c.set(failover_pre_script=str(pre), failover_post_script=str(post))
    res = switchover(c.cfg, c.store, c.log, to=s3)
    assert res.ok, res.sentence
    assert c.primary() == s3
    c.assert_converged()
    for addr in c.servers:                      # failover-readonly-state off: every server writable
        assert c.var(addr, "read_only") == "0", addr
    lines = calls.read_text().splitlines()
    words = lines[0].split()
    assert words[:5] == ["pre", s1.host, s3.host, str(s1.port), str(s3.port)] and words[7] == "switchover"
    assert lines[1].startswith("post ") and lines[1].endswith(" switchover")

    c.set(failover_readonly_state=True)
    res = switchover(c.cfg, c.store, c.log, to=s2)
    assert res.ok, res.sentence
    c.assert_converged()
    assert c.var(s2, "read_only") == "0"
    assert c.var(s1, "read_only") == "1" and c.var(s3, "read_only") == "1"

    res = switchover(c.cfg, c.store, c.log, to=s2)   # already the master
    assert not res.ok and "already the master" in res.sentence


def test_event_scheduler_moves_with_the_master(cluster_factory):
    """The freeze stops the scheduler on the old master; the new master runs it; replicas never do."""
    c = cluster_factory()
    s1, s2, s3 = c.servers
    c.sql(s1, "SET GLOBAL event_scheduler = ON")
    c.sql(s3, "SET GLOBAL event_scheduler = ON")          # a replica must not run events
    res = switchover(c.cfg, c.store, c.log, to=s2)
    assert res.ok, res.sentence
    assert c.var(s2, "event_scheduler") == "ON"
    assert c.var(s1, "event_scheduler") == "OFF" and c.var(s3, "event_scheduler") == "OFF"
    assert c.store.load().crashes[-1].event_scheduler is True
    assert any(f"event scheduler started on {s2.url}" in line for line in c.lines)
    c.assert_converged()
    # without the scheduler on the old master, the next master does not start it
    c.sql(s2, "SET GLOBAL event_scheduler = OFF")
    res = switchover(c.cfg, c.store, c.log, to=s1)
    assert res.ok, res.sentence
    assert all(c.var(a, "event_scheduler") == "OFF" for a in c.servers)
    assert c.store.load().crashes[-1].event_scheduler is False
