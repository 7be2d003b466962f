"""The monitoring loop end to end on real mariadbd: automatic failover, rejoin, limits, the lock."""

from __future__ import annotations

import re
import threading

from repman.watcher.analysis import Action
from repman.watcher.config import parse_config
from repman.watcher.loop import Watcher
from repman.watcher.operations import run_operation, store_for
from repman.watcher.oplock import OperationLock
from testkit.watcherbed import (
    cluster_section,
    converged,
    insert,
    make_table,
    master_of,
    restart,
    sql,
    wait_until,
)


def test_operation_lock_is_exclusive_and_names_its_holder(tmp_path):
    a, b = OperationLock(tmp_path), OperationLock(tmp_path)
    assert a.holder() is None
    assert a.acquire("switchover to 127.0.0.1:3307")
    assert not b.acquire("failover", timeout=0.1)
    assert b.holder().startswith("switchover to 127.0.0.1:3307 (pid ")
    a.release()
    assert b.holder() is None
    assert b.acquire("failover")
    b.release()


def test_operation_refused_while_another_holds_the_lock(tmp_path):
    cfg = parse_config({"clusters": {"c1": {
        "db-servers-hosts": ["127.0.0.1:1"], "db-servers-credential": "u:p", "replication-credential": "r:p",
        "monitoring-datadir": str(tmp_path)}}}).cluster()
    lock = OperationLock(cfg.state_dir)
    assert lock.acquire("rejoin of 127.0.0.1:1")
    try:
        result = run_operation("switchover", cfg, lambda m: None, lock_wait=0.2)
    finally:
        lock.release()
    assert not result.ok
    assert result.sentence.startswith("switchover refused: rejoin of 127.0.0.1:1 (pid ")


def _watcher(bed, tmp_path, **keys) -> Watcher:
    wc = parse_config({"clusters": {"c1": cluster_section(bed, tmp_path / "state", **keys)}})
    return Watcher(wc)


def test_loop_fails_over_a_killed_master_then_rejoins_it(bed, tmp_path):
    old = bed.addresses[0]
    make_table(bed, old)
    insert(bed, old, 20)
    converged(bed)
    watcher = _watcher(bed, tmp_path, failover_mode="automatic")
    mon = watcher.monitors["c1"]
    lines: list[str] = []
    mon._sink = lines.append
    watcher.start()
    try:
        wait_until(lambda: mon.decision is not None and mon.decision.rule == "healthy", 30, "first healthy tick")
        bed.kill(old)
        new = wait_until(lambda: mon.master if mon.master != old and mon.labels.get(mon.master) == "Master" else None,
                         90, "a new master elected by the loop")
        assert new in bed.addresses[1:]
        assert any("failing over to" in line for line in lines), lines
        assert store_for(mon.cfg).load().failover_count == 1
        insert(bed, new, 10)
        restart(bed, old)
        wait_until(lambda: mon.labels.get(old) == "Slave" and mon.states[old].replica is not None
                   and mon.states[old].replica.master == new and mon.states[old].replica.healthy,
                   90, "the old master rejoined as a replica of the new one")
        assert any("rejoin" in line for line in lines)
        assert master_of(bed) == new
        insert(bed, new, 5)
        converged(bed)
        assert sql(bed, old, "SELECT COUNT(*) AS n FROM repman_test.t")[0]["n"] == 35
        assert sql(bed, old, "SELECT @@read_only AS ro")[0]["ro"] == 1
    finally:
        watcher.stop()


def test_loop_fails_over_early_when_every_replica_lost_the_killed_master(bed, tmp_path):
    """kill -9 at a 1 s ticker with a ping counter of 5: both replicas' IO threads lose the master
    at once (Connecting), so the replicas-agree path fails over before the counter runs out."""
    old = bed.addresses[0]
    make_table(bed, old)
    insert(bed, old, 20)
    converged(bed)
    watcher = _watcher(bed, tmp_path, failover_mode="automatic", monitoring_ticker=1,
                       failover_falsepositive_ping_counter=5, failover_falsepositive_heartbeat_timeout=3)
    mon = watcher.monitors["c1"]
    lines: list[str] = []
    mon._sink = lines.append
    watcher.start()
    try:
        wait_until(lambda: mon.decision is not None and mon.decision.rule == "healthy", 30, "first healthy tick")
        bed.kill(old)
        new = wait_until(lambda: mon.master if mon.master != old and mon.labels.get(mon.master) == "Master" else None,
                         90, "a new master elected by the loop")
        assert new in bed.addresses[1:]
        decided = [line for line in lines if "failing over to" in line]
        assert decided, lines
        found = re.search(rf"master {re.escape(str(old))} failed (\d+)/5 pings and all 2 replicas lost it too "
                          rf"\(IO threads not connected\): failing over to {re.escape(str(new))}$", decided[0])
        assert found, decided[0]
        assert 2 <= int(found.group(1)) < 5        # the agreement decided, not the exhausted counter
        assert store_for(mon.cfg).load().failover_count == 1
        insert(bed, new, 10)
        restart(bed, old)
        wait_until(lambda: mon.labels.get(old) == "Slave" and mon.states[old].replica is not None
                   and mon.states[old].replica.master == new and mon.states[old].replica.healthy,
                   90, "the old master rejoined as a replica of the new one")
        assert master_of(bed) == new
        converged(bed)
        for a in bed.addresses:
            assert sql(bed, a, "SELECT COUNT(*) AS n FROM repman_test.t")[0]["n"] == 30
    finally:
        watcher.stop()


def test_loop_respects_failover_limit(bed, tmp_path):
    """A second death inside the limit is alerted, not failed over; state survives a watcher restart."""
    state = tmp_path / "state"
    watcher = _watcher(bed, tmp_path, failover_mode="automatic", failover_limit=1)
    store = store_for(watcher.monitors["c1"].cfg)
    state_before = store.load()
    state_before.failover_count = 1            # one failover already happened (persisted)
    store.save(state_before)
    watcher.stop()                             # never started: closes pools
    watcher = _watcher(bed, tmp_path, failover_mode="automatic", failover_limit=1)   # restarted watcher
    mon = watcher.monitors["c1"]
    watcher.start()
    master = bed.addresses[0]
    try:
        wait_until(lambda: mon.decision is not None and mon.decision.rule == "healthy", 30, "healthy")
        bed.kill(master)
        d = wait_until(lambda: mon.decision if mon.decision.rule == "failover-limit" else None, 60, "limit refusal")
        assert d.action == Action.REFUSE
        assert "failover-limit 1 is reached (1 failovers)" in d.sentence
        for r in bed.addresses[1:]:
            assert sql(bed, r, "SHOW SLAVE STATUS")[0]["Master_Port"] == master.port
        assert (state / "c1" / "state.json").exists()
    finally:
        watcher.stop()


def test_one_process_monitors_two_clusters(testbed, tmp_path):
    """Two clusters (1 + 2 nodes of the same testbed, bootstrapped apart) each get their own loop."""
    from repman.local.testbed import Testbed
    a, b, c = testbed.addresses
    solo = Testbed(base=testbed.base, nodes=[testbed.node(a)])
    pair = Testbed(base=testbed.base, nodes=[testbed.node(b), testbed.node(c)])
    solo.bootstrap()
    pair.bootstrap()
    wc = parse_config({"clusters": {
        "solo": cluster_section(solo, tmp_path / "state"),
        "pair": cluster_section(pair, tmp_path / "state"),
    }})
    watcher = Watcher(wc)
    watcher.start()
    try:
        for name, master, n in (("solo", a, 0), ("pair", b, 1)):
            mon = watcher.monitors[name]
            wait_until(lambda: mon.decision is not None and mon.decision.rule == "healthy", 30, f"{name} healthy")
            assert mon.master == master
            assert mon.decision.sentence == f"master {master} is healthy with {n} replica{'s' if n != 1 else ''}"
        assert {t.thread.name for t in watcher.threads} == {"monitor-solo", "monitor-pair"}
        assert all(t.thread.is_alive() for t in watcher.threads)
    finally:
        stopper = threading.Thread(target=watcher.stop)
        stopper.start()
        stopper.join(60)
        assert not stopper.is_alive()
    assert not any(t.thread.is_alive() for t in watcher.threads)


def test_loop_keeps_the_new_master_after_a_replica_then_the_master_died(bed, tmp_path):
    """Kill a replica, then the master; after the failover both restart (the replica follows the
    returning old master again): the promoted server stays the master and both rejoin it."""
    old, late, survivor = bed.addresses
    make_table(bed, old)
    insert(bed, old, 20)
    converged(bed)
    watcher = _watcher(bed, tmp_path, failover_mode="automatic")
    mon = watcher.monitors["c1"]
    lines: list[str] = []
    mon._sink = lines.append
    watcher.start()
    try:
        wait_until(lambda: mon.decision is not None and mon.decision.rule == "healthy", 30, "first healthy tick")
        bed.kill(late)
        wait_until(lambda: late in mon.states and not mon.states[late].reachable, 30, "the replica seen dead")
        bed.kill(old)
        wait_until(lambda: mon.master == survivor and mon.labels.get(survivor) == "Master"
                   and master_of(bed) == survivor, 90, "the failover to the surviving replica")
        insert(bed, survivor, 10)
        after_failover = len(lines)
        restart(bed, old)
        restart(bed, late)

        def rejoined(a) -> bool:
            s = mon.states.get(a)
            return bool(s and s.reachable and s.replica is not None and s.replica.master == survivor
                        and s.replica.healthy and mon.labels.get(a) == "Slave")
        wait_until(lambda: rejoined(old) and rejoined(late), 120, "both to rejoin the new master")
        assert mon.master == survivor
        assert not any(line.startswith("master is now") for line in lines[after_failover:]), lines[after_failover:]
        assert master_of(bed) == survivor
        insert(bed, survivor, 5)
        converged(bed)
        for a in bed.addresses:
            assert sql(bed, a, "SELECT COUNT(*) AS n FROM repman_test.t")[0]["n"] == 35
        assert store_for(mon.cfg).load().failover_count == 1
    finally:
        watcher.stop()


def test_state_file_of_an_older_watcher_still_loads(tmp_path):
    """Fields added later (maintenance, event scheduler) default when an older state.json lacks them."""
    import json

    from repman.watcher.state_store import StateStore
    (tmp_path / "state.json").write_text(json.dumps({
        "failover_count": 2, "last_failover_at": 12.5, "quarantined": {"127.0.0.1:3308": "diverged"},
        "crashes": [{"kind": "failover", "at": 12.5, "old_master": "127.0.0.1:3306",
                     "new_master": "127.0.0.1:3307", "positions": {}, "failover_pos": "0-1-9"}],
    }))
    store = StateStore(tmp_path)
    state = store.load()
    assert (state.failover_count, state.maintenance, state.master_event_scheduler) == (2, [], None)
    assert state.crashes[0].event_scheduler is False and state.quarantined == {"127.0.0.1:3308": "diverged"}
    assert store.set_maintenance("127.0.0.1:3308", True) and not store.set_maintenance("127.0.0.1:3308", True)
    store.set_master_event_scheduler(True)
    again = store.load()
    assert again.maintenance == ["127.0.0.1:3308"] and again.master_event_scheduler is True
    assert again.failover_count == 2 and again.crashes[0].failover_pos == "0-1-9"
    assert store.set_maintenance("127.0.0.1:3308", False) and store.load().maintenance == []
