"""Mixed fault scenarios under a writer: switchover, kill -9, rejoin, back to the preferred master.

Jepsen-style verdicts at the end: nothing acknowledged is lost, nothing appears
that was never sent, every node holds the same rows and GTID position, and no
server holds an errant transaction.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from repman.watcher.checks import read_states
from repman.watcher.election import errant_transactions
from repman.watcher.failover import failover
from repman.watcher.rejoin import rejoin
from repman.watcher.switchover import switchover
from testkit.env import needs_mariadb

pytestmark = needs_mariadb


def assert_no_errant(c) -> None:
    states = read_states(c.cfg)
    for addr, state in states.items():
        assert not errant_transactions(state, list(states.values())), f"{addr.url} holds errant transactions"


def test_switchover_kill_rejoin_and_back_under_writes(cluster_factory):
    c = cluster_factory(semisync=True, preferred=0)
    s1, s2, s3 = c.servers
    w = c.writer().start()
    try:
        w.wait_acks(50)
        res = switchover(c.cfg, c.store, c.log, to=s2)
        assert res.ok, res.sentence
        w.wait_acks(50)
        c.bed.kill(s2)                                         # kill -9 the new master under writes
        res = failover(c.cfg, c.store, c.log)
        assert res.ok, res.sentence
        assert res.new_primary in (s1, s3)                     # whichever received the most
        w.wait_acks(50)
        c.bed.start(s2)
        res = rejoin(c.cfg, c.store, s2, c.log)
        assert res.ok, res.sentence
        w.wait_acks(50)
        res = switchover(c.cfg, c.store, c.log, to=s2)         # the rejoined old master leads again
        assert res.ok, res.sentence
        res = switchover(c.cfg, c.store, c.log)                # back to the preferred master
        assert res.ok, res.sentence
        assert res.new_primary == s1, "\n".join(c.lines)
        w.wait_acks(50)
    finally:
        w.stop()
    primary = c.assert_converged()
    assert primary == s1
    lost, unexpected = w.verify(primary)
    assert not lost, sorted(lost)[:10]
    assert not unexpected, sorted(unexpected)[:10]
    assert_no_errant(c)
    kinds = [r.kind for r in c.store.load().crashes]
    assert kinds == ["switchover", "failover", "switchover", "switchover"]


def test_watcher_loop_fails_over_and_rejoins_by_itself(cluster_factory):
    from repman.watcher.loop import Watcher

    c = cluster_factory(semisync=True, failover_mode="automatic", monitoring_ticker=0.3,
                        failover_falsepositive_ping_counter=3, failover_falsepositive_heartbeat_timeout=0.6,
                        replication_heartbeat_period=0.2)
    old = c.primary()
    w = c.writer().start()
    watcher = Watcher.for_clusters([c.cfg])
    watcher.start()
    try:
        w.wait_acks(100)
        c.bed.kill(old)
        killed_at = time.monotonic()
        c.wait_for(lambda: w.acked and w.acked[-1].at > killed_at and w.acked[-1].server != old.url,
                   timeout=60, what="writes on a new master")
        new = c.primary()
        assert new != old
        c.bed.start(old)

        def rejoined():
            rows = c.sql(old, "SHOW SLAVE STATUS")
            return bool(rows) and int(rows[0]["Master_Port"]) == new.port and rows[0]["Slave_SQL_Running"] == "Yes"
        c.wait_for(rejoined, timeout=60, what="the old master to rejoin")
        w.wait_acks(50)
    finally:
        watcher.stop()
        w.stop()
    primary = c.assert_converged()
    lost, unexpected = w.verify(primary)
    assert not lost, sorted(lost)[:10]
    assert not unexpected, sorted(unexpected)[:10]
    assert_no_errant(c)
    assert c.store.load().failover_count == 1


@pytest.mark.soak
@pytest.mark.skipif(os.environ.get("REPMAN_SOAK") != "1", reason="long run: set REPMAN_SOAK=1")
def test_soak_random_faults_under_writes(cluster_factory):
    """Random switchovers, master kills and replica kills for REPMAN_SOAK_SECONDS (default 120)."""
    rng = random.Random(int(os.environ.get("REPMAN_SOAK_SEED", "7")))
    c = cluster_factory(semisync=True, failover_limit=0)
    for addr in c.servers:
        c.sql(addr, "SET GLOBAL rpl_semi_sync_master_timeout = 2000")
    w = c.writer().start()
    end = time.monotonic() + float(os.environ.get("REPMAN_SOAK_SECONDS", "120"))
    done: list[str] = []
    try:
        while time.monotonic() < end:
            w.wait_acks(20)
            action = rng.choice(["switchover", "kill-master", "kill-replica"])
            if action == "switchover":
                res = switchover(c.cfg, c.store, c.log)
                assert res.ok, res.sentence
            elif action == "kill-master":
                old = c.primary()
                c.bed.kill(old)
                res = failover(c.cfg, c.store, c.log)
                assert res.ok, res.sentence
                w.wait_acks(20)
                c.bed.start(old)
                res = rejoin(c.cfg, c.store, old, c.log)
                assert res.ok, res.sentence
            else:
                victim = rng.choice(c.replicas())
                c.bed.kill(victim)
                w.wait_acks(20)
                c.bed.start(victim)
                res = rejoin(c.cfg, c.store, victim, c.log)
                assert res.ok, res.sentence
            done.append(action)
            c.sql(c.primary(), "SET GLOBAL rpl_semi_sync_master_timeout = 2000")
    finally:
        w.stop()
    primary = c.assert_converged()
    lost, unexpected = w.verify(primary)
    assert not lost, sorted(lost)[:10]
    assert not unexpected, sorted(unexpected)[:10]
    assert_no_errant(c)
    assert len(done) > 3, done
