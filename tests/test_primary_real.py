"""Who is the primary, against real mariadbd: the monitor and a switchover must agree.

The state is the one of ``test_monitor.py``'s recorded-new-master case: a failover
promoted A while B was down; B came back following the old master M, which is back
read-only. The routers send writes to A (the crash record's new master); a
switchover that took the root B follows (M) for the master would promote B while A
still takes writes: two writable masters.
"""

from __future__ import annotations

from pathlib import Path

from repman.db import ServerAddress
from repman.watcher import crash
from repman.watcher.checks import read_states
from repman.watcher.monitor import ClusterMonitor
from repman.watcher.operations import store_for
from repman.watcher.switchover import switchover
from testkit.watcherbed import cluster_config, master_of, sql


def _writable(bed, servers: list[ServerAddress]) -> list[ServerAddress]:
    return [a for a in servers if not sql(bed, a, "SELECT @@read_only AS ro")[0]["ro"]]


def test_switchover_acts_on_the_master_the_monitor_reports(bed, tmp_path: Path):
    cfg = cluster_config(bed, tmp_path / "state")
    store = store_for(cfg)
    old = master_of(bed)
    new, follower = [a for a in bed.addresses if a != old]
    # A failover promoted ``new`` while ``follower`` was away; ``follower`` still follows ``old``,
    # which came back read-only.
    sql(bed, new, "STOP SLAVE")
    sql(bed, new, "RESET SLAVE ALL")
    sql(bed, new, "SET GLOBAL read_only = 0")
    sql(bed, old, "SET GLOBAL read_only = 1")
    states = read_states(cfg)
    crash.record(store, "failover", old, new, states, failover_pos=states[new].gtid_binlog_pos)

    monitor = ClusterMonitor(cfg, log=lambda m: None, act=False)
    monitor.tick()
    assert monitor.master == new

    lines: list[str] = []
    result = switchover(cfg, store, lines.append)
    # Whatever the switchover decides, it decides about the monitor's master: it never
    # freezes the old master nor promotes its follower while ``new`` takes writes.
    assert result.old_primary in (None, new), (result.sentence, lines)
    assert new.url in result.sentence, result.sentence
    assert _writable(bed, bed.addresses) == [new]
    assert sql(bed, follower, "SHOW SLAVE STATUS")[0]["Master_Port"] == old.port
