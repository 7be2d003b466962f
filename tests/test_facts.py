"""derive_facts without a server: hand-built states, tick after tick, every derived value checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from repman.db import ServerAddress
from repman.topology import ReplicaStatus, ServerState
from repman.watcher.analysis import Action, Decision, Facts
from repman.watcher.config import parse_config
from repman.watcher.facts import (
    REJOIN_CONFIRM_TICKS,
    KeepEventScheduler,
    KeepLagSeen,
    LogLine,
    Memory,
    derive_facts,
    server_labels,
)
from repman.watcher.state_store import ClusterState, CrashRecord

M = ServerAddress("127.0.0.1", 3306)
A = ServerAddress("127.0.0.1", 3307)
B = ServerAddress("127.0.0.1", 3308)
C = ServerAddress("127.0.0.1", 3309)
WALL = 1_800_000_000.0


def config(servers: tuple[ServerAddress, ...] = (M, A, B), **keys: Any):
    section = {"db-servers-hosts": [s.url for s in servers], "db-servers-credential": "u:p",
               "replication-credential": "r:p", "monitoring-ticker": 0.5}
    section.update({k.replace("_", "-"): v for k, v in keys.items()})
    return parse_config({"clusters": {"c1": section}}).cluster()


def primary(addr: ServerAddress, ro: bool = False, pos: str = "0-1-10", scheduler: str = "OFF") -> ServerState:
    return ServerState(address=addr, reachable=True, read_only=ro, log_bin=True, server_id=addr.port,
                       gtid_binlog_pos=pos, gtid_current_pos=pos, event_scheduler=scheduler)


def replica(addr: ServerAddress, of: ServerAddress = M, io: str = "Yes", sql: str = "Yes", hb: int = 0,
            received: str = "0-1-10", applied: str = "0-1-10", lag: int | None = 0, ro: bool = True,
            binlog: str = "0-1-10") -> ServerState:
    rep = ReplicaStatus(of.host, of.port, io, sql, lag, "", "", received, "Slave_Pos", hb, "")
    return ServerState(address=addr, reachable=True, read_only=ro, log_bin=True, server_id=addr.port,
                       gtid_binlog_pos=binlog, gtid_current_pos=applied, gtid_slave_pos=applied, replica=rep)


def down(addr: ServerAddress) -> ServerState:
    return ServerState(address=addr, reachable=False, error="Can't connect")


@dataclass
class Run:
    """Ticks through derive_facts as the monitor does, keeping every outcome."""

    cfg: Any
    memory: Memory
    persisted: ClusterState = field(default_factory=lambda: ClusterState(master_event_scheduler=False))
    running: str = ""
    facts: list[Facts] = field(default_factory=list)
    effects: list[list[Any]] = field(default_factory=list)

    @classmethod
    def of(cls, cfg: Any, master: ServerAddress | None = M, **kw: Any) -> Run:
        return cls(cfg, Memory.start(cfg, master), **kw)

    def tick(self, at: float, *states: ServerState, wall: float = WALL) -> Facts:
        facts, self.memory, effects = derive_facts(self.memory, self.cfg, {s.address: s for s in states},
                                                   self.persisted, at, self.running, wall=wall + at)
        self.facts.append(facts)
        self.effects.append(effects)
        return facts


# -- heartbeat growth ----------------------------------------------------------------------------------
def test_heartbeat_growth_over_the_window_names_the_replicas_that_still_hear_the_master():
    run = Run.of(config(failover_falsepositive_heartbeat_timeout=1.0))
    f = run.tick(0.0, primary(M), replica(A, hb=10), replica(B, hb=10))
    assert (f.master, f.master_reachable, f.heartbeat_window_ready, f.alive_observers) == (M, True, True, ())
    # master gone; no sample is one window old yet: the check is not ready
    f = run.tick(0.5, down(M), replica(A, io="Connecting", hb=12), replica(B, io="Connecting", hb=10))
    assert (f.master_reachable, f.heartbeat_window_ready, f.alive_observers) == (False, False, ())
    # one window later: A's counter grew since t=0, B's did not
    f = run.tick(1.0, down(M), replica(A, io="Connecting", hb=15), replica(B, io="Connecting", hb=10))
    assert f.heartbeat_window_ready is True
    assert f.alive_observers == ((A, "received 5 heartbeats in 1.0s"),)
    # nobody hears it any more: counters and positions frozen since the sample one window ago
    f = run.tick(2.0, down(M), replica(A, io="Connecting", hb=15), replica(B, io="Connecting", hb=10))
    assert (f.heartbeat_window_ready, f.alive_observers) == (True, ())
    assert len(run.memory.history) == 4


def test_events_received_and_a_connection_inside_two_heartbeat_periods_count_as_hearing():
    run = Run.of(config(failover_falsepositive_heartbeat_timeout=0.4, replication_heartbeat_period=0.5))
    run.tick(0.0, primary(M), replica(A, hb=3, received="0-1-10"), replica(B, hb=3))
    f = run.tick(0.5, down(M), replica(A, io="Connecting", hb=3, received="0-1-12"), replica(B, io="Yes", hb=3))
    assert f.alive_observers == ((A, "received events up to 0-1-12"), (B, "is still connected to it"))
    # the same connected IO thread over a span of two periods or more proves nothing
    f = run.tick(1.5, down(M), replica(A, io="Connecting", hb=3, received="0-1-12"), replica(B, io="Yes", hb=3))
    assert f.alive_observers == ()


def test_a_zero_window_is_ready_at_once_and_a_live_master_has_no_observers():
    run = Run.of(config(failover_falsepositive_heartbeat_timeout=0.0))
    f = run.tick(0.0, down(M), replica(A, io="Connecting"), replica(B, io="Connecting"))
    assert (f.heartbeat_window_ready, f.alive_observers, f.failed_pings) == (True, (), 1)


# -- the replicas' agreement ---------------------------------------------------------------------------
def test_replicas_agreement_lists_who_lost_the_master_and_why_the_others_do_not_agree():
    cfg = config((M, A, B, C))
    run = Run.of(cfg)
    run.tick(0.0, primary(M), replica(A, hb=5), replica(B, hb=5), replica(C, hb=5, received="0-1-10"))
    f = run.tick(0.5, down(M), replica(A, io="Connecting", hb=5), replica(B, io="Yes", hb=5),
                 replica(C, io="Connecting", hb=7))
    assert f.lost_by == (A,)
    assert f.still_hear == ((B, "still has its IO thread connected"),
                            (C, "received 2 heartbeats since the last tick"))
    f = run.tick(1.0, down(M), replica(A, io="No", hb=5), replica(B, io="Connecting", hb=5),
                 replica(C, io="Connecting", hb=7, received="0-1-11"))
    assert f.lost_by == (A, B)
    assert f.still_hear == ((C, "received events up to 0-1-11 since the last tick"),)
    f = run.tick(1.5, down(M), replica(A, io="No", hb=5), replica(B, io="Connecting", hb=5),
                 replica(C, io="Connecting", hb=7, received="0-1-11"))
    assert (f.lost_by, f.still_hear) == ((A, B, C), ())


def test_a_replica_without_an_earlier_reading_does_not_agree_and_the_check_can_be_off():
    run = Run.of(config())
    run.tick(0.0, primary(M), replica(A, hb=5), down(B))
    f = run.tick(0.5, down(M), replica(A, io="Connecting", hb=5), replica(B, io="Connecting", hb=5))
    assert (f.lost_by, f.still_hear) == ((A,), ((B, "has no earlier reading"),))

    off = Run.of(config(failover_falsepositive_replicas_agree=False))
    off.tick(0.0, primary(M), replica(A, hb=5), replica(B, hb=5))
    f = off.tick(0.5, down(M), replica(A, io="Connecting", hb=5), replica(B, io="Connecting", hb=5))
    assert (f.replicas_agree, f.lost_by, f.still_hear) == (False, (), ())


# -- rejoin needed, confirmed over ticks ---------------------------------------------------------------
def test_a_detached_server_needs_a_rejoin_only_after_the_confirmation_ticks():
    assert REJOIN_CONFIRM_TICKS == 2
    run = Run.of(config())
    f = run.tick(0.0, primary(M), replica(A, of=B), replica(B))
    assert f.rejoin_needed == () and dict(run.memory.detached) == {A: 1}
    f = run.tick(0.5, primary(M), replica(A, of=B), replica(B))
    assert f.rejoin_needed == ((A, f"replicates from {B.url}, not from the master {M}"),)
    assert dict(run.memory.detached) == {A: 2}
    # back under the master: the count starts over
    f = run.tick(1.0, primary(M), replica(A), replica(B))
    assert f.rejoin_needed == () and dict(run.memory.detached) == {}
    run.tick(1.5, primary(M), replica(A, of=B), replica(B))
    assert dict(run.memory.detached) == {A: 1}


@pytest.mark.parametrize("state, label, why", [
    (primary(A, ro=True), "Failed", "is back as a standalone server"),
    (primary(A, ro=True), "Slave", "replicates from nobody"),
    (replica(A, binlog="0-1-10,1-3307-4"), "Slave", "wrote 1-3307-4 itself while a replica"),
    (replica(A, io="No", sql="No"), "Suspect", "is back with replication stopped"),
])
def test_why_a_server_needs_a_rejoin(state, label, why):
    run = Run.of(config())
    run.memory = run.memory.with_labels({M: "Master", A: label, B: "Slave"})
    run.tick(0.0, primary(M), state, replica(B))
    f = run.tick(0.5, primary(M), state, replica(B))
    assert f.rejoin_needed == ((A, why),)


def test_quarantined_in_maintenance_or_a_dead_master_stop_the_rejoin_count():
    run = Run.of(config((M, A, B, C)), persisted=ClusterState(
        quarantined={A.url: "rejoin failed"}, maintenance=[B.url], master_event_scheduler=False))
    for at in (0.0, 0.5, 1.0):
        f = run.tick(at, primary(M), replica(A, of=B), replica(B, of=A), replica(C))
    assert f.master == M and f.rejoin_needed == () and dict(run.memory.detached) == {}
    assert f.quarantined == ((A, "rejoin failed"),) and f.in_maintenance == (B,)
    run = Run.of(config())
    run.tick(0.0, primary(M), replica(A, of=B), replica(B))
    f = run.tick(0.5, down(M), replica(A, of=B), replica(B, io="Connecting"))
    assert f.rejoin_needed == () and dict(run.memory.detached) == {A: 1}      # kept, not counted


# -- lag kept after the master died --------------------------------------------------------------------
def test_lag_of_the_last_tick_the_master_answered_is_kept_stored_and_used_for_the_election():
    run = Run.of(config(failover_max_slave_delay=30))
    run.tick(0.0, primary(M, pos="0-1-20"), replica(A, lag=40, received="0-1-20", applied="0-1-5"),
             replica(B, lag=0, received="0-1-20", applied="0-1-20"))
    assert dict(run.memory.lag_while_master_answered) == {A.url: (40.0, WALL), B.url: (0.0, WALL)}
    assert run.effects[-1] == []
    behind = replica(A, io="Connecting", lag=None, received="0-1-20", applied="0-1-5")
    caught_up = replica(B, io="Connecting", lag=None, received="0-1-20", applied="0-1-20")
    f = run.tick(0.5, down(M), behind, caught_up)
    assert run.effects[-1] == [KeepLagSeen({A.url: (40.0, WALL), B.url: (0.0, WALL)})]
    assert run.effects[-1][0].as_store_value() == {A.url: [40.0, WALL], B.url: [0.0, WALL]}
    assert run.memory.states[A].replica.seconds_behind == 40         # filled: received, not applied
    assert run.memory.states[B].replica.seconds_behind is None       # applied all it received
    assert behind.replica.seconds_behind is None                     # the caller's state untouched
    assert f.candidate == B
    assert "lags 40s behind the master" in f.no_candidate_reason
    f = run.tick(1.0, down(M), behind, caught_up)
    assert run.effects[-1] == [] and f.candidate == B                # stored once, when the master went
    assert dict(run.memory.lag_while_master_answered) == {A.url: (40.0, WALL), B.url: (0.0, WALL)}


def test_a_fresh_memory_takes_the_stored_lag():
    persisted = ClusterState(lag_seen={A.url: [50.0, WALL]}, master_event_scheduler=False)
    run = Run.of(config(), persisted=persisted)
    f = run.tick(0.0, down(M), replica(A, io="Connecting", lag=None, received="0-1-20", applied="0-1-5"),
                 replica(B, io="Connecting", lag=None))
    assert run.memory.states[A].replica.seconds_behind == 50 and f.candidate == B


# -- failed pings and the master's changes --------------------------------------------------------------
def test_failed_pings_count_up_then_a_recovery_reports_how_many():
    run = Run.of(config())
    pings = [run.tick(at, down(M), replica(A, io="Connecting"), replica(B, io="Connecting"))
             for at in (0.0, 0.5, 1.0)]
    assert [(f.failed_pings, f.previous_failed_pings) for f in pings] == [(1, 0), (2, 0), (3, 0)]
    f = run.tick(1.5, primary(M), replica(A), replica(B))
    assert (f.failed_pings, f.previous_failed_pings, f.master_reachable) == (0, 3, True)
    f = run.tick(2.0, primary(M), replica(A), replica(B))
    assert (f.failed_pings, f.previous_failed_pings) == (0, 0)


def test_a_new_master_resets_the_pings_and_the_history_and_is_logged():
    run = Run.of(config())
    for at in (0.0, 0.5):
        run.tick(at, down(M), replica(A, io="Connecting"), replica(B, io="Connecting"))
    assert run.memory.failed_pings == 2 and len(run.memory.history) == 2
    f = run.tick(1.0, down(M), primary(A), replica(B, of=A))
    assert (f.master, f.failed_pings) == (A, 0)
    assert run.effects[-1] == [LogLine(f"master is now {A} (was {M})")]
    assert len(run.memory.history) == 1 and set(run.memory.history[0][1]) == {B}
    # a new master that does not answer starts its own count at 1
    run = Run.of(config())
    run.tick(0.0, down(M), replica(A, io="Connecting"), replica(B, io="Connecting"))
    f = run.tick(0.5, down(M), down(A), replica(B, of=A, io="Connecting"))
    assert (f.master, f.failed_pings) == (A, 1)
    # no master known before: nothing to log
    run = Run.of(config(), master=None)
    run.tick(0.0, primary(M), replica(A), replica(B))
    assert run.memory.master == M and run.effects[-1] == []


def test_no_flip_flop_back_to_the_master_the_latest_failover_deposed():
    record = CrashRecord("failover", WALL, M.url, A.url, {})
    run = Run.of(config(), master=A, persisted=ClusterState(crashes=[record], master_event_scheduler=False))
    # the deposed master is back writable and B still follows it; A is momentarily read-only
    f = run.tick(0.0, primary(M), primary(A, ro=True), replica(B, of=M))
    assert f.master == A and run.effects[-1] == []
    assert f.stray_writable == ((M, "a standalone server"),)
    # once a switchover made A a replica of M, M is the master again
    f = run.tick(0.5, primary(M), replica(A, of=M), replica(B, of=M))
    assert f.master == M and run.effects[-1] == [LogLine(f"master is now {M} (was {A})")]


# -- no replica connected -----------------------------------------------------------------------------
def test_no_replica_for_grows_while_the_master_answers_without_a_connected_replica():
    run = Run.of(config())
    f = run.tick(10.0, primary(M), replica(A, io="Connecting"), replica(B, io="No"))
    assert (f.connected_replicas, f.no_replica_for, run.memory.no_replica_since) == (0, 0.0, 10.0)
    f = run.tick(12.5, primary(M), replica(A, io="Connecting"), replica(B, io="No"))
    assert (f.connected_replicas, f.no_replica_for) == (0, 2.5)
    f = run.tick(13.0, primary(M), replica(A), replica(B, io="No"))
    assert (f.connected_replicas, f.no_replica_for, run.memory.no_replica_since) == (1, 0.0, None)
    run.tick(14.0, primary(M), replica(A, io="Connecting"), replica(B, io="No"))
    f = run.tick(15.0, down(M), replica(A, io="Connecting"), replica(B, io="No"))
    assert (f.no_replica_for, run.memory.no_replica_since) == (0.0, None)


def test_broken_replicas_name_the_stopped_thread_and_its_error():
    run = Run.of(config((M, A, B, C)))
    stopped_sql = replica(A, sql="No")
    stopped_sql.replica.last_sql_error = "Duplicate entry '1' for key 'PRIMARY'"
    stopped_io = replica(B, io="No")
    stopped_io.replica.last_io_error = "Got fatal error 1236 from master"
    f = run.tick(0.0, primary(M), stopped_sql, stopped_io, replica(C, io="Connecting"))
    assert f.broken_replicas == ((A, "SQL thread stopped: Duplicate entry '1' for key 'PRIMARY'"),
                                 (B, "IO thread stopped: Got fatal error 1236 from master"))
    assert f.replicas == (A, B, C) and f.replicas_reachable == 3


# -- the rest of the memory ----------------------------------------------------------------------------
def test_event_scheduler_is_stored_when_it_changes_on_a_writable_master_with_no_operation_running():
    run = Run.of(config(), persisted=ClusterState())                  # never seen yet
    run.tick(0.0, primary(M, scheduler="ON"), replica(A), replica(B))
    assert run.effects[-1] == [KeepEventScheduler(True)]
    run.persisted = ClusterState(master_event_scheduler=True)
    run.tick(0.5, primary(M, scheduler="ON"), replica(A), replica(B))
    assert run.effects[-1] == []
    run.tick(1.0, primary(M, scheduler="OFF", ro=True), replica(A), replica(B))
    assert run.effects[-1] == []                                      # read-only: not trusted
    run.running = "rejoin of 127.0.0.1:3307"
    f = run.tick(1.5, primary(M, scheduler="OFF"), replica(A), replica(B))
    assert run.effects[-1] == [] and f.operation_running == "rejoin of 127.0.0.1:3307"
    run.running = ""
    run.tick(2.0, primary(M, scheduler="OFF"), replica(A), replica(B))
    assert run.effects[-1] == [KeepEventScheduler(False)]


def test_read_only_master_whole_cluster_down_and_failure_counts_for_labels():
    run = Run.of(config(failover_falsepositive_ping_counter=2))
    f = run.tick(0.0, primary(M, ro=True), replica(A), down(B))
    assert (f.master_read_only_now, f.master_read_only) == (True, False)
    f = run.tick(0.5, primary(M, ro=True), replica(A), down(B))
    assert (f.master_read_only_now, f.master_read_only) == (True, True)
    assert dict(run.memory.fails) == {B: 2} and f.unreachable_replicas == (B,)
    decision = Decision(Action.NOTHING, "healthy", "healthy")
    labels = server_labels(run.cfg, run.memory, run.memory.states, decision, f, {})
    assert labels == {M: "Master", A: "Slave", B: "Failed"}
    f = run.tick(1.0, down(M), down(A), down(B))
    assert f.whole_cluster_was_down is True and f.replicas == (A,)   # B was never seen as a replica
    f = run.tick(1.5, down(M), replica(A, io="Connecting"), down(B))
    assert f.whole_cluster_was_down is True                           # until the master answers
    f = run.tick(2.0, primary(M), replica(A), primary(B, ro=True))
    assert (f.whole_cluster_was_down, f.master_read_only_now, dict(run.memory.fails)) == (False, False, {})


def test_derive_facts_leaves_its_inputs_alone():
    run = Run.of(config())
    run.tick(0.0, primary(M), replica(A, lag=40, applied="0-1-5"), replica(B))
    before = run.memory
    states = {M: down(M), A: replica(A, io="Connecting", lag=None, applied="0-1-5"), B: replica(B)}
    facts, after, _ = derive_facts(before, run.cfg, states, ClusterState(), 0.5, "", wall=WALL)
    assert before.failed_pings == 0 and after.failed_pings == 1 and facts.failed_pings == 1
    assert len(before.history) == 1 and len(after.history) == 2
    assert states[A].replica.seconds_behind is None and after.states[A].replica.seconds_behind == 40
    with pytest.raises(TypeError):
        after.fails[M] = 5                                            # type: ignore[index]
