"""The monitor against real mariadbd: states, ping counter, heartbeat false-positive check."""

from __future__ import annotations

import json
import stat
import threading
import time

import pytest

from repman.db import ServerAddress
from repman.topology import ReplicaStatus, ServerState
from repman.watcher.analysis import Action
from repman.watcher.config import parse_config
from repman.watcher.crash import recorded_primary
from repman.watcher.facts import stray_writable
from repman.watcher.failover import failover
from repman.watcher.monitor import ClusterMonitor
from repman.watcher.operations import store_for
from repman.watcher.primary import find_master
from repman.watcher.state_store import CrashRecord
from testkit.watcherbed import (
    StrayWriter,
    cluster_config,
    converged,
    create_app_user,
    drop_readonly_tag,
    insert,
    make_table,
    master_of,
    restart,
    set_account_lock,
    sql,
    wait_until,
)

M = ServerAddress("127.0.0.1", 3306)
A = ServerAddress("127.0.0.1", 3307)
B = ServerAddress("127.0.0.1", 3308)


def st(addr: ServerAddress, of: ServerAddress | None = None, reachable: bool = True, ro: bool = True) -> ServerState:
    rep = None
    if of is not None:
        rep = ReplicaStatus(of.host, of.port, "Yes", "Yes", 0, "", "", "", "Slave_Pos", 0, "")
    return ServerState(address=addr, reachable=reachable, read_only=ro, replica=rep)


def test_find_master_follows_the_replicas():
    servers = [M, A, B]
    assert find_master({M: st(M, ro=False), A: st(A, M), B: st(B, M)}, servers, None) == M
    # master dead: the replicas still point at it
    assert find_master({M: st(M, reachable=False), A: st(A, M), B: st(B, M)}, servers, None) == M
    # after a failover, the votes move
    assert find_master({M: st(M, reachable=False), A: st(A, ro=False), B: st(B, A)}, servers, M) == A
    # nobody replicates: the lone writable server
    assert find_master({M: st(M, ro=True), A: st(A, ro=False), B: st(B, ro=True)}, servers, None) == A
    # nothing known: keep the previous one
    assert find_master({M: st(M, reachable=False), A: st(A, reachable=False), B: st(B, reachable=False)},
                       servers, M) == M
    # a tie keeps the previous master
    assert find_master({M: st(M), A: st(A, M), B: st(B, A)}, servers, A) == A


def test_recorded_new_master_outranks_the_replicas_votes():
    """After a replica then the master died and came back, the replica follows the old master."""
    cfg = parse_config({"clusters": {"c1": {
        "db-servers-hosts": [M.url, A.url, B.url], "db-servers-credential": "u:p",
        "replication-credential": "r:p"}}}).cluster()
    states = {M: st(M, ro=True), A: st(A, ro=False), B: st(B, M)}
    assert find_master(states, cfg.servers, A) == M                 # the votes alone pick the old master
    record = CrashRecord("failover", 0.0, M.url, A.url, {})
    recorded = recorded_primary(cfg, record, states)
    assert recorded == A
    assert find_master(states, cfg.servers, A, recorded) == A
    # the record counts only while its new master is a reachable, writable non-replica
    for gone in (st(A, reachable=False), st(A, ro=True), st(A, M, ro=False)):
        assert recorded_primary(cfg, record, {**states, A: gone}) is None
    assert recorded_primary(cfg, None, states) is None
    # what counts as a second master
    assert stray_writable(cfg, {**states, B: st(B, A, ro=False)}, A) == [(B, f"a replica of {A.url}")]
    assert stray_writable(cfg, {**states, M: st(M, ro=False)}, A) == [(M, "a standalone server")]
    assert stray_writable(cfg, {**states, B: st(B, A, ro=False)}, A, maintenance={B}) == []
    cfg.values["failover-readonly-state"] = False                   # writable replicas by design
    assert stray_writable(cfg, {**states, B: st(B, A, ro=False)}, A) == []


def test_status_comes_from_the_snapshot_published_each_tick_without_the_monitor_lock(tmp_path):
    """A fake reader instead of servers: the thin loop publishes one immutable snapshot per tick."""
    cfg = parse_config({"clusters": {"c1": {
        "db-servers-hosts": [M.url, A.url, B.url], "db-servers-credential": "u:p",
        "replication-credential": "r:p", "monitoring-datadir": str(tmp_path)}}}).cluster()
    world = {M: st(M, ro=False), A: st(A, M), B: st(B, M)}
    lines: list[str] = []
    mon = ClusterMonitor(cfg, log=lines.append, act=False, reader=lambda a: world[a])
    try:
        assert mon.status()["master"] is None and mon.status()["ticks"] == 0
        first = mon.snapshot
        assert mon.tick().rule == "healthy"
        published = mon.snapshot
        assert published is not first and first.ticks == 0 and first.decision is None
        assert (published.ticks, published.master, dict(published.labels)) == (
            1, M, {M: "Master", A: "Slave", B: "Slave"})
        with pytest.raises(TypeError):
            published.labels[A] = "Failed"                        # type: ignore[index]
        # a reader never waits on the monitor's lock, even while something holds it
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with mon._mutex:
                held.set()
                release.wait(10)
        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(5)
        answers: list[object] = []
        reader = threading.Thread(target=lambda: answers.extend([mon.status(), mon.read_targets(0)]))
        reader.start()
        reader.join(5)
        release.set()
        holder.join(5)
        assert len(answers) == 2, "status() or read_targets() waited on the monitor's lock"
        status, targets = answers
        assert status["master"] == M.url and status["ticks"] == 1
        assert [s["state"] for s in status["servers"]] == ["Master", "Slave", "Slave"]
        assert targets == ([A, B], [])
        # the master moves: one log line from the facts' effects, a new snapshot, the old one intact
        world.update({M: st(M, reachable=False), A: st(A, ro=False), B: st(B, A)})
        mon.tick()
        assert mon.master == A and published.master == M
        assert f"master is now {A} (was {M})" in lines
        # maintenance set in the store shows in the status before the next tick
        store_for(cfg).set_maintenance(B.url, True)
        assert {s["url"]: s["maintenance"] for s in mon.status()["servers"]} == {
            M.url: False, A.url: False, B.url: True}
        assert mon.labels[B] == "Slave"                           # the labels wait for the tick
        mon.tick()
        assert mon.labels[B] == "Maintenance" and mon.server_maintenance == frozenset({B})
    finally:
        mon.close()


def test_healthy_cluster_states_and_status_without_secrets(bed, tmp_path):
    cfg = cluster_config(bed, tmp_path / "state")
    mon = ClusterMonitor(cfg, log=lambda m: None, act=False)
    try:
        d = mon.tick()
        master = bed.addresses[0]
        assert d.action == Action.NOTHING
        assert d.sentence == f"master {master} is healthy with 2 replicas"
        assert mon.labels == {master: "Master", bed.addresses[1]: "Slave", bed.addresses[2]: "Slave"}
        status = mon.status()
        text = json.dumps(status)
        assert bed.admin.password not in text and bed.replication.password not in text
        by_url = {s["url"]: s for s in status["servers"]}
        assert by_url[master.url]["role"] == "master" and by_url[master.url]["read_only"] is False
        r = by_url[bed.addresses[1].url]
        assert r["master_url"] == master.url and r["io_thread"] == "Yes" and r["sql_thread"] == "Yes"
        assert r["read_only"] is True and r["seconds_behind_master"] == 0 and r["gtid_io_pos"]
    finally:
        mon.close()


def test_dead_master_goes_suspect_then_failed_alerts_in_manual_mode_then_recovers(bed, tmp_path):
    alerts = tmp_path / "alerts.log"
    script = tmp_path / "alert.sh"
    script.write_text(f"#!/bin/sh\necho \"$1|$2|$3|$4|$5\" >> {alerts}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    cfg = cluster_config(bed, tmp_path / "state", failover_mode="manual", alert_script=str(script),
                         failover_falsepositive_heartbeat_timeout=0.5)
    lines: list[str] = []
    mon = ClusterMonitor(cfg, log=lines.append, act=True)
    master = bed.addresses[0]
    try:
        sql(bed, master, "SET GLOBAL event_scheduler = ON")
        assert mon.tick().action == Action.NOTHING
        assert store_for(cfg).load().master_event_scheduler is True
        bed.kill(master)
        d1 = mon.tick()
        assert d1.action == Action.SUSPECT and d1.sentence.startswith(f"master {master} failed 1/3 pings (20")
        assert mon.labels[master] == "Suspect"
        decision = wait_until(lambda: (d := mon.tick()).action == Action.ALERT and d, 30, "manual-mode alert")
        assert "failover-mode is manual, alerting only" in decision.sentence
        assert mon.labels[master] == "Failed"
        assert decision.target in bed.addresses[1:]
        wait_until(lambda: alerts.exists() and "alerting only" in alerts.read_text(), 30, "alert script")
        # repman's arguments (cluster host previousState state) on a state change, our sentence fifth
        wait_until(lambda: f"c1|{master}|Master|Suspect|" in alerts.read_text(), 30, "state-change alert")
        assert any(line.startswith("c1|||Alert|master ") for line in alerts.read_text().splitlines())
        assert any(line.startswith("ALERT ") for line in lines)
        # manual mode: nothing moved
        for r in bed.addresses[1:]:
            assert sql(bed, r, "SHOW SLAVE STATUS")[0]["Master_Port"] == master.port
        assert store_for(cfg).load().failover_count == 0
        restart(bed, master)
        recovered = wait_until(lambda: (d := mon.tick()).action == Action.REOPEN and d, 30, "recovery")
        assert recovered.sentence.startswith(f"master {master} answers again after ")
        assert mon.labels[master] == "Master"
        # it restarted read-only (readonly tag): the watcher gives it writes back
        assert recovered.sentence.endswith("clearing the read_only it restarted with")
        wait_until(lambda: mon.tick().rule == "healthy", 30, "healthy again")
        assert sql(bed, master, "SELECT @@read_only AS ro")[0]["ro"] == 0
        assert any("takes writes again" in line for line in lines)
        assert sql(bed, master, "SELECT @@event_scheduler AS es")[0]["es"] == "ON"   # restarted OFF
    finally:
        mon.close()


def test_replicas_hearing_the_master_veto_failover(bed, tmp_path):
    """The watcher loses the master (account locked there) while replication still flows."""
    cfg = cluster_config(bed, tmp_path / "state", failover_mode="automatic",
                         failover_falsepositive_heartbeat_timeout=1.5)
    lines: list[str] = []
    mon = ClusterMonitor(cfg, log=lines.append, act=True, routers=[])
    master = bed.addresses[0]
    try:
        mon.tick()
        set_account_lock(bed, master, True)
        seen = []

        def vetoed() -> bool:
            d = mon.tick()
            seen.append(d.rule)
            return d.rule == "heartbeats-alive"
        wait_until(vetoed, 30, "the heartbeat veto", every=0.3)
        assert "failover" not in seen
        assert "heartbeats" in mon.decision.sentence or "received events" in mon.decision.sentence
        assert mon.labels[master] == "Suspect"
        for _ in range(5):
            assert mon.tick().action != Action.FAILOVER
        for r in bed.addresses[1:]:
            assert sql(bed, r, "SHOW SLAVE STATUS")[0]["Master_Port"] == master.port
        assert store_for(cfg).load().failover_count == 0
        set_account_lock(bed, master, False)
        assert wait_until(lambda: mon.tick().action == Action.RECOVER, 30, "recovery")
        assert sql(bed, master, "SELECT @@read_only AS ro")[0]["ro"] == 0
    finally:
        set_account_lock(bed, master, False)
        mon.close()


def test_replicas_still_connected_keep_the_agreement_path_from_failing_over(bed, tmp_path):
    """The watcher loses the master (account locked there) while the replicas' IO threads stay
    connected: the replicas-agree path, even at one ping, never fires; many ticks, no failover."""
    cfg = cluster_config(bed, tmp_path / "state", failover_mode="automatic",
                         failover_falsepositive_replicas_agree_pings=1, failover_falsepositive_heartbeat_timeout=1.0)
    mon = ClusterMonitor(cfg, log=lambda m: None, act=True, routers=[])
    master = bed.addresses[0]
    try:
        assert mon.tick().rule == "healthy"
        set_account_lock(bed, master, True)
        decisions = []
        while mon.failed_pings < 4 * int(cfg["failover-falsepositive-ping-counter"]):
            decisions.append(mon.tick())
            assert not mon.states[master].reachable
            time.sleep(0.2)
        assert all(d.action != Action.FAILOVER for d in decisions), [d.sentence for d in decisions]
        assert not any("lost it too" in d.sentence for d in decisions)
        suspects = [d.sentence for d in decisions if d.rule == "suspect"]
        assert suspects and all(s.endswith("still has its IO thread connected)") for s in suspects), suspects
        assert {d.rule for d in decisions} <= {"suspect", "heartbeat-wait", "heartbeats-alive"}
        assert decisions[-1].rule == "heartbeats-alive"
        assert mon.labels[master] == "Suspect"
        for r in bed.addresses[1:]:
            row = sql(bed, r, "SHOW SLAVE STATUS")[0]
            assert row["Master_Port"] == master.port and row["Slave_IO_Running"] == "Yes"
        assert store_for(cfg).load().failover_count == 0 and mon.last_result is None
        set_account_lock(bed, master, False)
        assert wait_until(lambda: mon.tick().action == Action.RECOVER, 30, "recovery")
    finally:
        set_account_lock(bed, master, False)
        mon.close()


def test_heartbeat_check_off_fails_over_a_master_the_watcher_cannot_see(bed, tmp_path):
    """Counter-test of the veto: without the heartbeat check the same partition is a failure."""
    cfg = cluster_config(bed, tmp_path / "state", failover_mode="manual", failover_falsepositive_heartbeat=False)
    mon = ClusterMonitor(cfg, log=lambda m: None, act=False)
    master = bed.addresses[0]
    try:
        mon.tick()
        set_account_lock(bed, master, True)
        d = wait_until(lambda: (d := mon.tick()).action == Action.ALERT and d, 30, "failure")
        assert "the heartbeat check is off" in d.sentence
    finally:
        set_account_lock(bed, master, False)
        mon.close()


def _rows(bed, addr) -> int:
    return int(sql(bed, addr, "SELECT COUNT(*) AS n FROM repman_test.t")[0]["n"])


def _fenced_then_repaired(bed, mon, lines, stray, app, expected_master) -> None:
    """A client writing to ``stray`` commits until the fencing tick, never after; rejoin undoes its rows."""
    w = StrayWriter(stray, app).start()
    try:
        wait_until(lambda: w.successes() >= 5, 30, f"client writes committed on the writable {stray}")
        decisions = []
        for _ in range(2):                                  # within one or two ticks
            decisions.append(mon.tick())
            if decisions[-1].rule == "fence":
                break
        fenced_at = time.monotonic()
        d = decisions[-1]
        assert d.rule == "fence" and d.action == Action.FENCE and d.target == stray, [x.sentence for x in decisions]
        assert f"is writable while {expected_master} is the master: fencing it now" in d.sentence
        assert sql(bed, stray, "SELECT @@read_only AS ro")[0]["ro"] == 1
        assert any(line.startswith(f"fenced {stray.url}: it was writable") for line in lines), lines
        kept = _rows(bed, stray)
        wait_until(lambda: len(w.failed_after(fenced_at)) >= 5, 30, "the client to be refused")
    finally:
        w.stop()
    assert not w.committed_after(fenced_at), "a client write committed after the fence"
    assert 1290 in {a.code for a in w.failed_after(fenced_at)}     # --read-only refuses it
    assert _rows(bed, stray) == kept
    # the rows it took before the fence: rejoin saves and undoes them (flashback)
    wait_until(lambda: (mon.tick() and mon.last_result is not None and mon.last_result.kind == "rejoin"),
               90, "the rejoin of the fenced server", every=0.3)
    assert mon.last_result.ok, mon.last_result.sentence
    assert "flashback" in mon.last_result.sentence
    assert list((mon.cfg.state_dir / "rejoin").glob("*-extra.binlog.sql"))
    assert master_of(bed) == expected_master
    insert(bed, expected_master, 2)
    converged(bed)
    assert _rows(bed, stray) == _rows(bed, expected_master)
    wait_until(lambda: mon.tick().rule == "healthy", 30, "healthy again")


def test_writable_replica_is_fenced_in_the_same_tick_then_flashed_back(bed, tmp_path):
    master, stray, _ = bed.addresses
    make_table(bed, master)
    insert(bed, master, 5)
    app = create_app_user(bed, master)
    converged(bed)
    lines: list[str] = []
    mon = ClusterMonitor(cluster_config(bed, tmp_path / "state"), log=lines.append, act=True, routers=[])
    try:
        assert mon.tick().rule == "healthy"
        sql(bed, stray, "SET GLOBAL read_only = 0")        # a stray writable node
        _fenced_then_repaired(bed, mon, lines, stray, app, master)
        assert any(f"{stray} wrote " in line and "itself while a replica" in line for line in lines), lines
    finally:
        mon.close()


def test_old_master_back_writable_is_fenced_then_flashed_back(bed, tmp_path):
    old = bed.addresses[0]
    make_table(bed, old)
    insert(bed, old, 5)
    app = create_app_user(bed, old)
    converged(bed)
    cfg = cluster_config(bed, tmp_path / "state")
    bed.kill(old)
    res = failover(cfg, store_for(cfg), lambda m: None)
    assert res.ok, res.sentence
    new = res.new_primary
    insert(bed, new, 3)
    lines: list[str] = []
    mon = ClusterMonitor(cfg, log=lines.append, act=True, routers=[])
    try:
        assert mon.tick().rule == "healthy" and mon.master == new
        drop_readonly_tag(bed, old)                         # it restarts without read_only
        restart(bed, old)
        assert sql(bed, old, "SELECT @@read_only AS ro")[0]["ro"] == 0
        _fenced_then_repaired(bed, mon, lines, old, app, new)
        assert mon.master == new
    finally:
        mon.close()
