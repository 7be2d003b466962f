"""Failure analysis as a table: topology facts in, decision and sentence out (pure, fast)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from repman.db import ServerAddress
from repman.watcher.analysis import RULES, Action, Facts, analyse, dead_master, master_state_label

M = ServerAddress("127.0.0.1", 3306)
A = ServerAddress("127.0.0.1", 3307)
B = ServerAddress("127.0.0.1", 3308)
C = ServerAddress("127.0.0.1", 3309)

HEALTHY = Facts(master=M, replicas=(A, B), replicas_reachable=2, candidate=A, servers=3)
DEAD = replace(HEALTHY, master_reachable=False, master_error="2003: Can't connect", failed_pings=5,
               failover_mode="automatic")
PINGS = "master 127.0.0.1:3306 failed 5/5 pings"
NOBODY = "no replica receives heartbeats or events from it"
# The fast path: two failed pings and every reachable replica lost the master too.
AGREE = replace(DEAD, failed_pings=2, lost_by=(A, B))
PINGS2 = "master 127.0.0.1:3306 failed 2/5 pings"
LOST2 = "all 2 replicas lost it too (IO threads not connected)"
CONNECTED = ((A, "still has its IO thread connected"),)

CASES = [
    # name, facts, action, sentence (exact), target
    ("healthy", HEALTHY, Action.NOTHING, "master 127.0.0.1:3306 is healthy with 2 replicas", None),
    ("healthy one replica", replace(HEALTHY, replicas=(A,)), Action.NOTHING,
     "master 127.0.0.1:3306 is healthy with 1 replica", None),
    ("healthy no replica", replace(HEALTHY, replicas=()), Action.NOTHING,
     "master 127.0.0.1:3306 is healthy with 0 replicas", None),
    ("healthy, a replica down", replace(HEALTHY, unreachable_replicas=(B,)), Action.NOTHING,
     "master 127.0.0.1:3306 is healthy with 2 replicas; 127.0.0.1:3308 unreachable", None),
    ("healthy in manual mode", replace(HEALTHY, failover_mode="manual"), Action.NOTHING,
     "master 127.0.0.1:3306 is healthy with 2 replicas", None),
    ("healthy past failover limit", replace(HEALTHY, failover_count=9), Action.NOTHING,
     "master 127.0.0.1:3306 is healthy with 2 replicas", None),
    ("first failed ping", replace(DEAD, failed_pings=1), Action.SUSPECT,
     "master 127.0.0.1:3306 failed 1/5 pings (2003: Can't connect): suspect", None),
    ("four failed pings", replace(DEAD, failed_pings=4), Action.SUSPECT,
     "master 127.0.0.1:3306 failed 4/5 pings (2003: Can't connect): suspect", None),
    ("suspect without error text", replace(DEAD, failed_pings=2, master_error=""), Action.SUSPECT,
     "master 127.0.0.1:3306 failed 2/5 pings (no answer): suspect", None),
    ("suspect even with no candidate", replace(DEAD, failed_pings=3, candidate=None), Action.SUSPECT,
     "master 127.0.0.1:3306 failed 3/5 pings (2003: Can't connect): suspect", None),
    ("ping counter of one", replace(DEAD, failed_pings=1, ping_threshold=1), Action.FAILOVER,
     f"master 127.0.0.1:3306 failed 1/1 pings and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("dead master automatic", DEAD, Action.FAILOVER, f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("dead master, pings beyond threshold", replace(DEAD, failed_pings=12), Action.FAILOVER,
     f"master 127.0.0.1:3306 failed 12/5 pings and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("dead master other candidate", replace(DEAD, candidate=B), Action.FAILOVER,
     f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3308", B),
    ("heartbeat check off", replace(DEAD, heartbeat_check=False), Action.FAILOVER,
     f"{PINGS} and the heartbeat check is off: failing over to 127.0.0.1:3307", A),
    ("heartbeat check off ignores observers",
     replace(DEAD, heartbeat_check=False, alive_observers=((A, "received 3 heartbeats"),)), Action.FAILOVER,
     f"{PINGS} and the heartbeat check is off: failing over to 127.0.0.1:3307", A),
    ("replica still receives heartbeats", replace(DEAD, alive_observers=((A, "received 3 heartbeats"),)),
     Action.SUSPECT, f"{PINGS} but 127.0.0.1:3307 received 3 heartbeats: it is alive, not failing over", None),
    ("replica still receives events", replace(DEAD, alive_observers=((B, "received events up to 0-1-90"),)),
     Action.SUSPECT, f"{PINGS} but 127.0.0.1:3308 received events up to 0-1-90: it is alive, not failing over",
     None),
    ("two observers", replace(DEAD, alive_observers=((A, "received 2 heartbeats"), (B, "is connected"))),
     Action.SUSPECT,
     f"{PINGS} but 127.0.0.1:3307 received 2 heartbeats, 127.0.0.1:3308 is connected: it is alive, "
     "not failing over", None),
    ("heartbeat window not spanned", replace(DEAD, heartbeat_window_ready=False), Action.SUSPECT,
     f"{PINGS}: waiting for the replicas' heartbeat check before declaring it failed", None),
    ("heartbeat window irrelevant when no replica answers",
     replace(DEAD, heartbeat_window_ready=False, replicas_reachable=0, candidate=None,
             no_candidate_reason="127.0.0.1:3307 is unreachable; 127.0.0.1:3308 is unreachable"),
     Action.REFUSE,
     f"{PINGS} and no replica is reachable, but 127.0.0.1:3307 is unreachable; 127.0.0.1:3308 is unreachable",
     None),
    ("manual mode alerts", replace(DEAD, failover_mode="manual"), Action.ALERT,
     f"{PINGS} and {NOBODY}: failed; failover-mode is manual, alerting only "
     "(`repman failover` would promote 127.0.0.1:3307)", A),
    ("manual mode with observers stays suspect",
     replace(DEAD, failover_mode="manual", alive_observers=((A, "received 1 heartbeats"),)), Action.SUSPECT,
     f"{PINGS} but 127.0.0.1:3307 received 1 heartbeats: it is alive, not failing over", None),
    ("no candidate", replace(DEAD, candidate=None,
                             no_candidate_reason="127.0.0.1:3307 lags 40s behind the master, over "
                             "failover-max-slave-delay 30s"), Action.REFUSE,
     f"{PINGS} and {NOBODY}, but 127.0.0.1:3307 lags 40s behind the master, over failover-max-slave-delay 30s",
     None),
    ("no candidate without reason", replace(DEAD, candidate=None), Action.REFUSE,
     f"{PINGS} and {NOBODY}, but no replica is electable", None),
    ("no candidate in manual mode", replace(DEAD, candidate=None, failover_mode="manual"), Action.REFUSE,
     f"{PINGS} and {NOBODY}, but no replica is electable", None),
    ("failover limit reached", replace(DEAD, failover_count=5), Action.REFUSE,
     f"{PINGS} and {NOBODY}, but failover-limit 5 is reached (5 failovers): "
     "reset it with `repman reset-failover-counter`", None),
    ("failover limit over", replace(DEAD, failover_count=7, failover_limit=3), Action.REFUSE,
     f"{PINGS} and {NOBODY}, but failover-limit 3 is reached (7 failovers): "
     "reset it with `repman reset-failover-counter`", None),
    ("failover limit not yet", replace(DEAD, failover_count=4), Action.FAILOVER,
     f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("failover limit zero means none", replace(DEAD, failover_count=99, failover_limit=0), Action.FAILOVER,
     f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("within time limit", replace(DEAD, since_last_failover=12.0, failover_time_limit=60), Action.REFUSE,
     f"{PINGS} and {NOBODY}, but the last failover was 12s ago, within failover-time-limit 60s", None),
    ("within time limit, short", replace(DEAD, since_last_failover=2.25, failover_time_limit=5), Action.REFUSE,
     f"{PINGS} and {NOBODY}, but the last failover was 2.2s ago, within failover-time-limit 5s", None),
    ("past time limit", replace(DEAD, since_last_failover=61.0, failover_time_limit=60), Action.FAILOVER,
     f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("time limit zero", replace(DEAD, since_last_failover=1.0, failover_time_limit=0), Action.FAILOVER,
     f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("never failed over with time limit", replace(DEAD, since_last_failover=None, failover_time_limit=60),
     Action.FAILOVER, f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("limit checked before time limit", replace(DEAD, failover_count=5, since_last_failover=1,
                                                failover_time_limit=60), Action.REFUSE,
     f"{PINGS} and {NOBODY}, but failover-limit 5 is reached (5 failovers): "
     "reset it with `repman reset-failover-counter`", None),
    ("whole cluster was down", replace(DEAD, whole_cluster_was_down=True), Action.REFUSE,
     f"{PINGS} after the whole cluster was down: a returning replica may miss its writes, "
     "not failing over (failover-restart-unsafe is off)", None),
    ("whole cluster was down, unsafe allowed", replace(DEAD, whole_cluster_was_down=True, restart_unsafe=True),
     Action.FAILOVER, f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("single node cluster dies", replace(DEAD, replicas=(), replicas_reachable=0, candidate=None), Action.FAILED,
     f"{PINGS}: failed, and the cluster has no replica to fail over to", None),
    ("master recovered", replace(HEALTHY, previous_failed_pings=3), Action.RECOVER,
     "master 127.0.0.1:3306 answers again after 3 failed pings: back to normal", M),
    ("master recovered read-only", replace(HEALTHY, previous_failed_pings=4, master_read_only_now=True),
     Action.REOPEN, "master 127.0.0.1:3306 answers again after 4 failed pings: back to normal, "
     "clearing the read_only it restarted with", M),
    ("master recovered beats rejoin", replace(HEALTHY, previous_failed_pings=1, rejoin_needed=((C, "is back"),)),
     Action.RECOVER, "master 127.0.0.1:3306 answers again after 1 failed pings: back to normal", M),
    ("old master back", replace(HEALTHY, master=A, replicas=(B,),
                                rejoin_needed=((M, "is back as a standalone server"),)),
     Action.REJOIN, "127.0.0.1:3306 is back as a standalone server: rejoining it to master 127.0.0.1:3307", M),
    ("two servers to rejoin, first first",
     replace(HEALTHY, rejoin_needed=((B, "replicates from 127.0.0.1:3309"), (C, "is back"))), Action.REJOIN,
     "127.0.0.1:3308 replicates from 127.0.0.1:3309: rejoining it to master 127.0.0.1:3306", B),
    ("autorejoin off", replace(HEALTHY, autorejoin=False, rejoin_needed=((B, "is back as a standalone server"),)),
     Action.ALERT, "127.0.0.1:3308 is back as a standalone server and autorejoin is off: rejoin it by hand", None),
    ("quarantined server", replace(HEALTHY, quarantined=((B, "diverged: 0-3-12 cannot be undone"),)), Action.ALERT,
     "127.0.0.1:3308 is quarantined (diverged: 0-3-12 cannot be undone): re-seed it, then release it", None),
    ("broken replica", replace(HEALTHY, broken_replicas=((B, "SQL thread stopped: 1062 Duplicate entry"),)),
     Action.ALERT, "replica 127.0.0.1:3308 is broken: SQL thread stopped: 1062 Duplicate entry", None),
    ("replica needing binlogs the master purged, autoseed on",
     replace(HEALTHY, autoseed=True, broken_replicas=((B, "IO thread stopped: Got fatal error 1236"),)),
     Action.SEED, "replica 127.0.0.1:3308 cannot continue (IO thread stopped: Got fatal error 1236): "
     "autoseed re-seeds it from a physical copy", B),
    ("failover cut after its promotion",
     replace(HEALTHY, master_read_only_now=True, master_read_only=True, promotion_unfinished=True,
             rejoin_needed=((B, "replicates from 127.0.0.1:3309, not from the master"),)), Action.REOPEN,
     "master 127.0.0.1:3306 was promoted by a failover that stopped before opening its writes: "
     "finishing it (clearing read_only)", M),
    ("unfinished promotion but another server writable: never two masters",
     replace(HEALTHY, master_read_only_now=True, master_read_only=True, promotion_unfinished=True,
             other_writable=(B,)), Action.ALERT,
     "127.0.0.1:3308 is writable and replicates from nobody while 127.0.0.1:3306 is the master: "
     "fix by hand (rejoin or set read_only)", None),
    ("finished promotion, read-only by an operator: alert only",
     replace(HEALTHY, master_read_only_now=True, master_read_only=True), Action.ALERT,
     "master 127.0.0.1:3306 is read-only: writes are refused until an operator clears read_only", None),
    ("master read-only", replace(HEALTHY, master_read_only=True), Action.ALERT,
     "master 127.0.0.1:3306 is read-only: writes are refused until an operator clears read_only", None),
    ("two writable masters", replace(HEALTHY, other_writable=(B,)), Action.ALERT,
     "127.0.0.1:3308 is writable and replicates from nobody while 127.0.0.1:3306 is the master: "
     "fix by hand (rejoin or set read_only)", None),
    ("three writable masters", replace(DEAD, other_writable=(B, C)), Action.ALERT,
     "127.0.0.1:3308, 127.0.0.1:3309 are writable and replicate from nobody while 127.0.0.1:3306 is the master: "
     "fix by hand (rejoin or set read_only)", None),
    ("no master", Facts(master=None, servers=3), Action.ALERT,
     "no master found among 3 servers: nobody replicates from a known server and none is writable", None),
    ("maintenance", replace(DEAD, maintenance=True), Action.NOTHING,
     "cluster in maintenance: monitoring only, no action", None),
    ("operation running", replace(DEAD, operation_running="failover to 127.0.0.1:3307"), Action.NOTHING,
     "failover to 127.0.0.1:3307 in progress: waiting for it to finish", None),
    ("operation running beats maintenance", replace(HEALTHY, maintenance=True,
                                                    operation_running="switchover in another process"),
     Action.NOTHING, "switchover in another process in progress: waiting for it to finish", None),
    ("stray standalone fenced", replace(HEALTHY, stray_writable=((B, "a standalone server"),), other_writable=(B,)),
     Action.FENCE, "127.0.0.1:3308 (a standalone server) is writable while 127.0.0.1:3306 is the master: fencing it "
     "now (read_only, client connections killed); rejoin repairs what it took", B),
    ("stray replica and standalone fenced",
     replace(HEALTHY, stray_writable=((A, "a replica of 127.0.0.1:3306"), (C, "a standalone server")),
             rejoin_needed=((C, "is back as a standalone server"),)),
     Action.FENCE, "127.0.0.1:3307 (a replica of 127.0.0.1:3306), 127.0.0.1:3309 (a standalone server) are "
     "writable while 127.0.0.1:3306 is the master: fencing them now (read_only, client connections killed); "
     "rejoin repairs what it took", A),
    ("fence waits for a running operation",
     replace(HEALTHY, stray_writable=((B, "a standalone server"),), operation_running="switchover to 127.0.0.1:3308"),
     Action.NOTHING, "switchover to 127.0.0.1:3308 in progress: waiting for it to finish", None),
    ("no fence while the master is dead", replace(DEAD, stray_writable=((B, "a standalone server"),)),
     Action.FAILOVER, f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("master in maintenance not failed over", replace(DEAD, master_maintenance=True), Action.NOTHING,
     "master 127.0.0.1:3306 is in maintenance and does not answer (2003: Can't connect): not failing over", None),
    ("master in maintenance, first ping", replace(DEAD, master_maintenance=True, failed_pings=1, master_error=""),
     Action.NOTHING, "master 127.0.0.1:3306 is in maintenance and does not answer (no answer): not failing over",
     None),
    ("healthy with servers in maintenance", replace(HEALTHY, in_maintenance=(B,)), Action.NOTHING,
     "master 127.0.0.1:3306 is healthy with 2 replicas; 127.0.0.1:3308 in maintenance", None),
    # -- replicas agree (orchestrator's DeadMaster) -------------------------------------------
    ("replicas agree after two pings", AGREE, Action.FAILOVER,
     f"{PINGS2} and {LOST2}: failing over to 127.0.0.1:3307", A),
    ("replicas agree need no heartbeat window",
     replace(AGREE, heartbeat_window_ready=False, alive_observers=((A, "received 2 heartbeats in 3.0s"),)),
     Action.FAILOVER, f"{PINGS2} and {LOST2}: failing over to 127.0.0.1:3307", A),
    ("replicas agree at the full counter", replace(AGREE, failed_pings=5), Action.FAILOVER,
     f"{PINGS} and {LOST2}: failing over to 127.0.0.1:3307", A),
    ("replicas agree with the heartbeat check off", replace(AGREE, heartbeat_check=False), Action.FAILOVER,
     f"{PINGS2} and {LOST2}: failing over to 127.0.0.1:3307", A),
    ("one replica still connected waits", replace(AGREE, lost_by=(B,), still_hear=CONNECTED), Action.SUSPECT,
     f"{PINGS2} (2003: Can't connect): suspect (127.0.0.1:3307 still has its IO thread connected)", None),
    ("a replica received heartbeats since the last tick waits",
     replace(AGREE, failed_pings=3, lost_by=(A,), still_hear=((B, "received 1 heartbeats since the last tick"),)),
     Action.SUSPECT, "master 127.0.0.1:3306 failed 3/5 pings (2003: Can't connect): suspect "
     "(127.0.0.1:3308 received 1 heartbeats since the last tick)", None),
    ("one replica still connected, full counter: the heartbeat veto holds",
     replace(DEAD, lost_by=(B,), still_hear=CONNECTED, alive_observers=((A, "is still connected to it"),)),
     Action.SUSPECT, f"{PINGS} but 127.0.0.1:3307 is still connected to it: it is alive, not failing over", None),
    ("one replica still connected, full counter, nobody heard in the window",
     replace(DEAD, lost_by=(B,), still_hear=((A, "has no earlier reading"),)), Action.FAILOVER,
     f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("no reachable replica waits for the full counter",
     replace(DEAD, failed_pings=2, replicas_reachable=0, candidate=None), Action.SUSPECT,
     f"{PINGS2} (2003: Can't connect): suspect", None),
    ("replicas agree off waits", replace(AGREE, replicas_agree=False), Action.SUSPECT,
     f"{PINGS2} (2003: Can't connect): suspect", None),
    ("replicas agree off, full counter: the old sentence", replace(AGREE, replicas_agree=False, failed_pings=5),
     Action.FAILOVER, f"{PINGS} and {NOBODY}: failing over to 127.0.0.1:3307", A),
    ("below the agreement's minimum pings waits", replace(AGREE, failed_pings=1), Action.SUSPECT,
     "master 127.0.0.1:3306 failed 1/5 pings (2003: Can't connect): suspect", None),
    ("agreement minimum raised waits", replace(AGREE, failed_pings=3, replicas_agree_pings=4), Action.SUSPECT,
     "master 127.0.0.1:3306 failed 3/5 pings (2003: Can't connect): suspect", None),
    ("agreement minimum of one ping", replace(AGREE, failed_pings=1, replicas_agree_pings=1), Action.FAILOVER,
     f"master 127.0.0.1:3306 failed 1/5 pings and {LOST2}: failing over to 127.0.0.1:3307", A),
    ("replicas agree, one replica unreachable",
     replace(AGREE, replicas=(A, B, C), lost_by=(A, B), unreachable_replicas=(C,)), Action.FAILOVER,
     f"{PINGS2} and all 2 reachable replicas lost it too (IO threads not connected): failing over to 127.0.0.1:3307",
     A),
    ("the only reachable replica agrees", replace(AGREE, lost_by=(B,), replicas_reachable=1, candidate=B),
     Action.FAILOVER, f"{PINGS2} and its only reachable replica lost it too (IO thread not connected): "
     "failing over to 127.0.0.1:3308", B),
    ("the single replica agrees", replace(AGREE, replicas=(A,), replicas_reachable=1, lost_by=(A,)),
     Action.FAILOVER, f"{PINGS2} and its replica lost it too (IO thread not connected): failing over to 127.0.0.1:3307",
     A),
    ("replicas agree in manual mode", replace(AGREE, failover_mode="manual"), Action.ALERT,
     f"{PINGS2} and {LOST2}: failed; failover-mode is manual, alerting only "
     "(`repman failover` would promote 127.0.0.1:3307)", A),
    ("replicas agree past the failover limit", replace(AGREE, failover_count=5), Action.REFUSE,
     f"{PINGS2} and {LOST2}, but failover-limit 5 is reached (5 failovers): "
     "reset it with `repman reset-failover-counter`", None),
    ("replicas agree within the time limit", replace(AGREE, since_last_failover=3.0, failover_time_limit=60),
     Action.REFUSE, f"{PINGS2} and {LOST2}, but the last failover was 3.0s ago, within failover-time-limit 60s", None),
    ("replicas agree, no candidate", replace(AGREE, candidate=None, no_candidate_reason="127.0.0.1:3307 lags"),
     Action.REFUSE, f"{PINGS2} and {LOST2}, but 127.0.0.1:3307 lags", None),
    ("replicas agree after the whole cluster was down", replace(AGREE, whole_cluster_was_down=True), Action.REFUSE,
     f"{PINGS2} after the whole cluster was down: a returning replica may miss its writes, "
     "not failing over (failover-restart-unsafe is off)", None),
    ("replicas agree, master in maintenance", replace(AGREE, master_maintenance=True), Action.NOTHING,
     "master 127.0.0.1:3306 is in maintenance and does not answer (2003: Can't connect): not failing over", None),
    ("replicas agree while an operation runs", replace(AGREE, operation_running="rejoin of 127.0.0.1:3309"),
     Action.NOTHING, "rejoin of 127.0.0.1:3309 in progress: waiting for it to finish", None),
    # Semi-sync without silent fallback: the watcher alone switches to asynchronous commits.
    ("semisync: no replica for the fallback delay", replace(
        HEALTHY, semisync_managed=True, semisync_master_on=True, connected_replicas=0, no_replica_for=12.5,
        async_fallback_after=10.0, unreachable_replicas=(A, B)), Action.ALERT,
     "master 127.0.0.1:3306 has had no replica connected for 12s: switching it to asynchronous commits "
     "(failover-semisync-async-fallback 10s); its new writes exist on it alone until a replica returns", M),
    ("semisync: no replica, within the delay", replace(
        HEALTHY, semisync_managed=True, semisync_master_on=True, no_replica_for=4.0, async_fallback_after=10.0),
     Action.NOTHING, "master 127.0.0.1:3306 is healthy with 2 replicas", None),
    ("semisync: fallback off", replace(
        HEALTHY, semisync_managed=True, semisync_master_on=True, no_replica_for=400.0, async_fallback_after=0.0),
     Action.NOTHING, "master 127.0.0.1:3306 is healthy with 2 replicas", None),
    ("semisync: a replica is back", replace(
        HEALTHY, semisync_managed=True, semisync_master_on=False, connected_replicas=1), Action.NOTHING,
     "master 127.0.0.1:3306 has 1 replica connected again: semi-sync back on", M),
    ("rejoin waits while master suspect", replace(DEAD, failed_pings=2, rejoin_needed=((C, "is back"),)),
     Action.SUSPECT, "master 127.0.0.1:3306 failed 2/5 pings (2003: Can't connect): suspect", None),
]


@pytest.mark.parametrize("name, facts, action, sentence, target", CASES, ids=[c[0] for c in CASES])
def test_decision_table(name, facts, action, sentence, target):
    d = analyse(facts)
    assert (d.action, d.sentence, d.target) == (action, sentence, target)


def test_table_is_large_enough_and_covers_every_rule():
    assert len(CASES) >= 40
    used = {analyse(c[1]).rule for c in CASES}
    assert used == {r[0] for r in RULES}


@pytest.mark.parametrize("facts, label", [
    (HEALTHY, "Master"),
    (replace(DEAD, failed_pings=2), "Suspect"),
    (replace(DEAD, alive_observers=((A, "x"),)), "Suspect"),
    (replace(DEAD, heartbeat_window_ready=False), "Suspect"),
    (DEAD, "Failed"),
    (replace(DEAD, failover_mode="manual"), "Failed"),
    (replace(DEAD, candidate=None), "Failed"),
    (replace(HEALTHY, maintenance=True), "Maintenance"),
    (replace(HEALTHY, master_maintenance=True), "Maintenance"),
    (replace(DEAD, master_maintenance=True), "Maintenance"),
    (AGREE, "Failed"),
    (replace(AGREE, still_hear=CONNECTED), "Suspect"),
    (replace(AGREE, replicas_agree=False), "Suspect"),
])
def test_master_state_label(facts, label):
    assert master_state_label(analyse(facts), facts) == label


def test_dead_master_helper():
    assert dead_master(DEAD)
    assert not dead_master(replace(DEAD, failed_pings=4))
    assert not dead_master(replace(DEAD, alive_observers=((A, "x"),)))
    assert dead_master(replace(DEAD, heartbeat_check=False, alive_observers=((A, "x"),)))
    assert not dead_master(HEALTHY)
    assert dead_master(AGREE)
    assert dead_master(replace(AGREE, alive_observers=((A, "received 1 heartbeats in 3.0s"),)))
    assert not dead_master(replace(AGREE, still_hear=CONNECTED))
    assert not dead_master(replace(AGREE, replicas_agree=False))
    assert not dead_master(replace(AGREE, failed_pings=1))
    assert not dead_master(replace(AGREE, lost_by=()))
