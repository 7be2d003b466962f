"""Two watchers sharing one real etcd and one real MariaDB cluster (three mariadbd): one acts.

Each watcher has its own state directory, as on two hosts, so the local operation lock
(a ``flock``) does not keep them apart: only the etcd leadership does.
"""

from __future__ import annotations

import json
import time

from repman.watcher.config import parse_config
from repman.watcher.ha.settings import HaSettings
from repman.watcher.loop import Watcher
from repman.watcher.monitor import ClusterMonitor
from repman.watcher.operations import store_for
from testkit.watcherbed import cluster_section, converged, insert, make_table, master_of, wait_until

TTL = 2


def watcher(bed, etcd, tmp_path, name: str, lines: list[str]) -> Watcher:
    wc = parse_config({"clusters": {"c1": cluster_section(bed, tmp_path / name, failover_mode="automatic")}})
    wc.ha = HaSettings(tuple(etcd.endpoints), prefix="/it", lease_ttl=TTL, watcher_name=name, timeout=0.5)
    return Watcher(wc, log_factory=lambda cluster: lambda m: lines.append(f"{name} {m}"))


def failovers(mon: ClusterMonitor) -> list[dict[str, object]]:
    """The failover runs of this watcher's runner (refused submissions never get here)."""
    return [r for r in mon.runner.status() if r["kind"] == "failover"]


def leads(mon: ClusterMonitor) -> bool:
    return mon.gate is not None and mon.gate() == ""


def healthy(mon: ClusterMonitor) -> bool:
    return mon.decision is not None and mon.decision.rule == "healthy"


def test_one_leader_acts_the_other_takes_over_and_fails_over_once(bed, etcd_factory, tmp_path) -> None:
    etcd = etcd_factory(1)
    old = bed.addresses[0]
    make_table(bed, old)
    insert(bed, old, 10)
    converged(bed)
    lines: list[str] = []
    w1, w2 = watcher(bed, etcd, tmp_path, "w1", lines), watcher(bed, etcd, tmp_path, "w2", lines)
    m1, m2 = w1.monitors["c1"], w2.monitors["c1"]
    w1.start()
    try:
        wait_until(lambda: leads(m1) and healthy(m1), 20, "w1 to lead a healthy cluster")
        w2.start()
        wait_until(lambda: healthy(m2) and "not acting: watcher w1 leads c1" in m2.decision.sentence, 20,
                   "w2 to monitor and say that w1 acts")
        assert not leads(m2)
        assert m1.status()["ha"] == {"acting": True, "why_not": ""}
        assert m2.status()["ha"] == {"acting": False, "why_not": "not acting: watcher w1 leads c1"}
        # w1 loses etcd (its renewals stop; it keeps monitoring): it stops acting, w2 takes over
        cut_at = time.monotonic()
        w1.ha.stop(release=False, close=False)
        wait_until(lambda: not leads(m1), TTL, "w1 to stop acting")
        assert time.monotonic() - cut_at <= TTL * 2 / 3 + 0.2
        wait_until(lambda: leads(m2), 3 * TTL, "w2 to take over")
        assert time.monotonic() - cut_at < TTL + 1.5
        assert not leads(m1)
        wait_until(lambda: "not acting" in m1.decision.sentence, 5, "w1's decision to say it does not act")
        # kill -9 the master: exactly one failover, by w2
        bed.kill(old)
        new = wait_until(lambda: m2.master if m2.master != old and m2.labels.get(m2.master) == "Master" else None,
                         40, "w2 to fail over")
        assert master_of(bed) == new
        wait_until(lambda: failovers(m2), 10, "w2's failover run to be recorded")
        assert len(failovers(m2)) == 1 and failovers(m2)[0]["ok"], failovers(m2)
        assert failovers(m1) == []                     # w1 saw the dead master, and did nothing
        assert etcd_state(etcd)["failover_count"] == 1          # the state both watchers share
        assert store_for(m1.cfg).load().failover_count == 1
        assert not (tmp_path / "w1" / "c1" / "state.json").exists()
        assert not any(line.startswith("w1 starting") for line in lines)
    finally:
        w2.stop()
        w1.stop(release=False)


def test_no_etcd_nobody_acts_monitoring_goes_on_then_one_failover(bed, etcd_factory, tmp_path) -> None:
    etcd = etcd_factory(1)
    old = bed.addresses[0]
    lines: list[str] = []
    w1, w2 = watcher(bed, etcd, tmp_path, "w1", lines), watcher(bed, etcd, tmp_path, "w2", lines)
    m1, m2 = w1.monitors["c1"], w2.monitors["c1"]
    w1.start()
    w2.start()
    try:
        wait_until(lambda: healthy(m1) and healthy(m2) and (leads(m1) != leads(m2)), 20, "one leader, both healthy")
        etcd.stop()
        for m in (m1, m2):
            wait_until(lambda: "not acting: etcd unreachable" in m.decision.sentence, 3 * TTL,
                       f"{m.name}'s decision to say etcd is unreachable")
        bed.kill(old)
        wait_until(lambda: all(m.master == old and m.failed_pings >= 3 for m in (m1, m2)), 20,
                   "both watchers to see the master dead")
        ticks = (m1.ticks, m2.ticks)
        wait_until(lambda: m1.ticks > ticks[0] + 3 and m2.ticks > ticks[1] + 3, 10, "monitoring to go on")
        assert failovers(m1) == failovers(m2) == []
        assert "failing over" in m1.decision.sentence and "not acting: etcd unreachable" in m1.decision.sentence
        assert master_of_alive(bed) is None            # nobody promoted a replica
        etcd.start()
        winner = wait_until(lambda: next((m for m in (m1, m2) if failovers(m)), None), 40, "one failover")
        other = m2 if winner is m1 else m1
        wait_until(lambda: other.master == winner.master, 10, "the other watcher to see the new master")
        assert len(failovers(winner)) == 1 and failovers(other) == [], (failovers(winner), failovers(other))
        assert failovers(winner)[0]["ok"], failovers(winner)
        assert etcd_state(etcd)["failover_count"] == 1
        assert etcd_state(etcd)["crashes"][-1]["new_master"] == str(winner.master)
        assert master_of(bed) == winner.master
    finally:
        w1.stop()
        w2.stop()


def etcd_state(etcd) -> dict[str, object]:
    kv = etcd.client().get(b"/it/c1/state")
    assert kv is not None, "no state in etcd"
    return json.loads(kv.value)


def master_of_alive(bed):
    """The writable non-replica among the reachable nodes, or None (read-only replicas only)."""
    try:
        return master_of(bed)
    except AssertionError:
        return None
