"""``autoseed``: a replica stopped by error 1236 (its master purged the binlogs it needs) is
re-seeded by the monitor from a physical copy, under writes; without the key it is only
reported. Real mariadbd and mariadb-backup; the decision row is also checked on its own."""

from __future__ import annotations

import shutil
import time

import pytest

from repman.db import ServerAddress
from repman.seeding import purge_binlogs
from repman.watcher.analysis import Action, Facts, analyse
from repman.watcher.monitor import ClusterMonitor
from testkit.env import needs_mariadb

A, B = ServerAddress("10.0.0.1", 3306), ServerAddress("10.0.0.2", 3306)
E1236 = "IO thread stopped: Got fatal error 1236 from master when reading data from binary log: 'purged'"


def test_decision_row():
    facts = Facts(master=A, replicas=(B,), replicas_reachable=1, broken_replicas=((B, E1236),), servers=2)
    off = analyse(facts)
    assert off.action == Action.ALERT and off.rule == "broken-replica"
    on = analyse(Facts(**{**facts.__dict__, "autoseed": True}))
    assert on.action == Action.SEED and on.target == B
    assert on.sentence.startswith(f"replica {B} cannot continue (IO thread stopped: Got fatal error 1236")
    other = analyse(Facts(**{**facts.__dict__, "autoseed": True,
                             "broken_replicas": ((B, "SQL thread stopped: Duplicate entry"),)}))
    assert other.action == Action.ALERT  # only what the binlogs cannot feed is re-seeded


@needs_mariadb
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mariadb-backup") is None, reason="mariadb-backup not installed")
def test_monitor_reseeds_a_replica_stopped_by_error_1236(cluster_factory):
    cluster = cluster_factory(count=3, autoseed=True)
    primary = cluster.primary()
    behind = cluster.replicas()[0]
    writer = cluster.writer(pause=0.001).start()
    lines: list[str] = []
    mon = ClusterMonitor(cluster.cfg, log=lines.append, act=True)
    try:
        writer.wait_acks(50)
        cluster.sql(behind, "STOP SLAVE")
        writer.wait_acks(200)
        with cluster.bed.connect(primary) as conn:
            purge_binlogs(conn)
        cluster.sql(behind, "START SLAVE")
        cluster.wait_for(lambda: "1236" in (cluster.sql(behind, "SHOW SLAVE STATUS")[0]["Last_IO_Error"] or ""),
                         what="error 1236")
        deadline = time.monotonic() + 120
        seen = False
        while time.monotonic() < deadline:
            decision = mon.tick()
            seen = seen or decision.action == Action.SEED
            mon.wait_operation(60)
            status = cluster.sql(behind, "SHOW SLAVE STATUS")
            if seen and status and status[0]["Slave_IO_Running"] == "Yes" and status[0]["Slave_SQL_Running"] == "Yes":
                break
            time.sleep(0.2)
        assert seen, lines[-5:]
        assert any(line.startswith(f"autoseed: {behind} re-seeded from") for line in lines), lines[-5:]
        writer.wait_acks(100)
    finally:
        mon.close()
        writer.stop()
    cluster.assert_converged()
    for addr in cluster.servers:
        lost, unexpected = writer.verify(addr)
        assert not lost and not unexpected


@needs_mariadb
def test_monitor_only_reports_without_autoseed(cluster_factory):
    cluster = cluster_factory(count=2)
    primary, behind = cluster.primary(), cluster.replicas()[0]
    cluster.sql(behind, "STOP SLAVE")
    cluster.sql(primary, "CREATE DATABASE IF NOT EXISTS autoseed_t")
    with cluster.bed.connect(primary) as conn:
        purge_binlogs(conn)
    cluster.sql(behind, "START SLAVE")
    cluster.wait_for(lambda: "1236" in (cluster.sql(behind, "SHOW SLAVE STATUS")[0]["Last_IO_Error"] or ""),
                     what="error 1236")
    mon = ClusterMonitor(cluster.cfg, log=lambda m: None, act=True)
    try:
        decision = mon.tick()
    finally:
        mon.close()
    assert decision.action == Action.ALERT and decision.rule == "broken-replica", decision
    assert "1236" in decision.sentence
