"""Semi-sync switchover: the other replica is chained under the candidate before the freeze.

Real 3-node semi-sync clusters. When writes open on the new master a semi-sync
replica is already attached to it, so the first commit is acknowledged at once;
nothing acknowledged is lost; and a switchover refused after the chaining leaves
every replica following the old master again.
"""

from __future__ import annotations

import pytest

import repman.watcher.switchover as switchover_module
from repman.watcher.prechain import chain
from repman.watcher.switchover import switchover
from testkit.env import needs_mariadb

pytestmark = [needs_mariadb, pytest.mark.slow]
TAGS = ("gtidstrict", "row", "readonly", "noquerycache", "smallredolog")


def _source_port(c, address) -> int:
    rows = c.sql(address, "SHOW SLAVE STATUS")
    return int(rows[0]["Master_Port"]) if rows else 0


def test_semisync_switchover_chains_the_other_replica_and_loses_nothing(cluster_factory):
    c = cluster_factory(semisync=True, tags=TAGS)
    target, other = c.replicas()
    w = c.writer(pause=0.001).start()
    try:
        w.wait_acks(100)
        res = switchover(c.cfg, c.store, c.log, to=target)
        assert res.ok, res.sentence
        assert f"{other.url} now replicates from {target.url} (attached before the freeze)" in res.steps
        assert "prechain" in res.timings
        w.wait_acks(100)
    finally:
        w.stop()
    assert c.primary() == target
    c.assert_converged()
    lost, unexpected = w.verify(target)
    assert not lost and not unexpected
    assert int(c.sql(target, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")[0]["Value"]) == 2


def test_a_replica_ahead_of_the_candidate_is_not_chained(cluster_factory):
    c = cluster_factory(semisync=True, tags=TAGS)
    master = c.primary()
    cand, other = c.replicas()
    c.sql(cand, "STOP SLAVE")                       # the candidate misses the next write
    c.sql(master, "CREATE DATABASE ahead")
    c.wait_for(lambda: c.sql(other, "SHOW DATABASES LIKE 'ahead'"), what="the write on the other replica")
    assert chain(c.cfg, [other], cand) == []
    assert _source_port(c, other) == master.port     # still follows the master, replicating
    c.sql(cand, "START SLAVE")
    c.assert_converged()


def test_refused_switchover_unchains_the_other_replica(cluster_factory, monkeypatch):
    c = cluster_factory(semisync=True, tags=TAGS)
    old = c.primary()
    target, other = c.replicas()
    monkeypatch.setattr(switchover_module, "wait_gtid", lambda *a, **k: False)   # catch-up "times out"
    res = switchover(c.cfg, c.store, c.log, to=target)
    assert not res.ok and "did not reach the frozen position" in res.sentence
    assert c.primary() == old and c.var(old, "read_only") == "0"
    assert _source_port(c, other) == old.port and _source_port(c, target) == old.port
    c.sql(old, "CREATE DATABASE after_refusal")
    c.assert_converged()
