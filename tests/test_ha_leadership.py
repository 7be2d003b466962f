"""Leader keys on a real etcd: one leader per cluster, takeover within the TTL, no acting without etcd."""

from __future__ import annotations

import time

from repman.watcher.ha.etcd import op_put
from repman.watcher.ha.leadership import HaAgent
from repman.watcher.ha.settings import HaSettings
from testkit.polling import wait_until

CLUSTERS = ["c1", "c2", "c3"]
TTL = 2


def agent(etcd, name: str, clusters=CLUSTERS) -> HaAgent:
    settings = HaSettings(tuple(etcd.endpoints), prefix="/t", lease_ttl=TTL, watcher_name=name, timeout=0.5)
    return HaAgent(settings, clusters)


def leaders(agents: list[HaAgent], cluster: str) -> list[str]:
    return [a.name for a in agents if a.why_not(cluster) == ""]


def one_leader_each(agents: list[HaAgent]) -> dict[str, str] | None:
    out = {}
    for c in CLUSTERS:
        names = leaders(agents, c)
        if len(names) != 1:
            return None
        out[c] = names[0]
    return out


def crash(a: HaAgent) -> None:
    """The watcher process dies: no more renewals, no revoke (its lease must expire in etcd)."""
    a.stop(release=False, close=False)


def test_exactly_one_leader_and_takeover_after_a_crash(etcd_factory) -> None:
    etcd = etcd_factory(1)
    w1, w2 = agent(etcd, "w1").start(), agent(etcd, "w2")
    try:
        wait_until(lambda: one_leader_each([w1]), 5, "w1 to lead every cluster")
        w2.start()
        wait_until(lambda: all(w2.view(c).holder == "w1" for c in CLUSTERS), 5, "w2 to see w1 lead")
        assert one_leader_each([w1, w2]) == {c: "w1" for c in CLUSTERS}
        assert w2.why_not("c1") == "not acting: watcher w1 leads c1"
        crashed_at = time.monotonic()
        crash(w1)
        wait_until(lambda: one_leader_each([w2]), 3 * TTL, "w2 to take over")
        took = time.monotonic() - crashed_at
        assert took < TTL + 1.5, took                 # the TTL plus at most a renewal interval and a request
        assert one_leader_each([w1, w2]) == {c: "w2" for c in CLUSTERS}
    finally:
        w2.stop()


def test_graceful_stop_hands_over_at_once(etcd_factory) -> None:
    etcd = etcd_factory(1)
    w1, w2 = agent(etcd, "w1").start(), agent(etcd, "w2")
    try:
        wait_until(lambda: one_leader_each([w1]), 5, "w1 to lead")
        w2.start()
        wait_until(lambda: w2.view("c1").holder == "w1", 5, "w2 to see w1")
        stopped_at = time.monotonic()
        w1.stop(release=True)                          # the lease is revoked: the keys go with it
        wait_until(lambda: one_leader_each([w2]), 3, "w2 to take over")
        assert time.monotonic() - stopped_at < 1.5
    finally:
        w2.stop()


def test_a_deposed_leaders_late_write_is_refused(etcd_factory) -> None:
    etcd = etcd_factory(1)
    w1, w2 = agent(etcd, "w1", ["c1"]).start(), agent(etcd, "w2", ["c1"])
    try:
        wait_until(lambda: w1.why_not("c1") == "", 5, "w1 to lead")
        old = w1.leadership("c1")
        ok, _ = old.guarded_txn([], [op_put(b"/t/c1/result", b"w1 while leading")])
        assert ok
        w2.start()
        crash(w1)
        wait_until(lambda: w2.why_not("c1") == "", 3 * TTL, "w2 to take over")
        ok, _ = old.guarded_txn([], [op_put(b"/t/c1/result", b"w1 late")])
        assert not ok
        ok, _ = w2.leadership("c1").guarded_txn([], [op_put(b"/t/c1/result", b"w2")])
        assert ok
        assert etcd.client().get(b"/t/c1/result").value == b"w2"
    finally:
        w2.stop()


def test_without_etcd_the_leader_stops_acting_before_its_lease_could_expire(etcd_factory) -> None:
    etcd = etcd_factory(1)
    w1 = agent(etcd, "w1", ["c1"]).start()
    try:
        wait_until(lambda: w1.why_not("c1") == "", 5, "w1 to lead")
        stopped_at = time.monotonic()
        etcd.stop()
        why = wait_until(lambda: w1.why_not("c1"), 3 * TTL, "w1 to stop acting")
        stopped_acting = time.monotonic() - stopped_at
        # believed until ttl*2/3 after the last renewal was sent: always before etcd could expire it
        assert stopped_acting <= TTL * 2 / 3 + 0.1, stopped_acting
        assert why.startswith("not acting: etcd unreachable"), why
    finally:
        w1.stop(release=False)


def test_quorum_lost_nobody_leads_quorum_back_one_leader(etcd_factory) -> None:
    etcd = etcd_factory(3)
    agents = [agent(etcd, f"w{i}").start() for i in (1, 2, 3)]
    try:
        first = wait_until(lambda: one_leader_each(agents), 10, "one leader per cluster")
        etcd.kill(etcd.members[0])
        etcd.kill(etcd.members[1])
        wait_until(lambda: all(not leaders(agents, c) for c in CLUSTERS), 3 * TTL, "nobody to lead")
        wait_until(lambda: all("etcd unreachable" in a.why_not("c1") for a in agents), 3 * TTL,
                   "every watcher to say why it does not act")
        etcd.start()
        after = wait_until(lambda: one_leader_each(agents), 20, "one leader per cluster again")
        assert set(after) == set(first)
    finally:
        for a in agents:
            a.stop()
