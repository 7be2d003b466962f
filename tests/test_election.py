"""Candidate election rules, on plain snapshots (no server needed)."""

from __future__ import annotations

import pytest

from repman.db import ServerAddress
from repman.keys import coerce
from repman.topology import ReplicaStatus, ServerState
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import elect, errant_transactions, io_position
from repman.watcher.keys import WATCHER_KEYS

M = ServerAddress("127.0.0.1", 3306)
A = ServerAddress("127.0.0.1", 3307)
B = ServerAddress("127.0.0.1", 3308)


def cfg(**overrides) -> ClusterConfig:
    values = {name: coerce(key, None) for name, key in WATCHER_KEYS.items()}
    values["db-servers-hosts"] = [M, A, B]
    values.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return ClusterConfig("c1", values)


def master(pos: str = "0-1-100") -> ServerState:
    return ServerState(address=M, reachable=True, server_id=1, log_bin=True,
                       gtid_binlog_pos=pos, gtid_current_pos=pos)


def replica(addr: ServerAddress, sid: int, applied: str = "0-1-100", received: str | None = None,
            io: str = "Yes", sql: str = "Yes", behind: int | None = 0, filters: str = "",
            binlog: str | None = None, of: ServerAddress = M, log_bin: bool = True) -> ServerState:
    return ServerState(
        address=addr, reachable=True, server_id=sid, log_bin=log_bin, read_only=True,
        gtid_binlog_pos=binlog if binlog is not None else applied,
        gtid_current_pos=binlog if binlog is not None else applied, gtid_slave_pos=applied,
        replica=ReplicaStatus(
            master_host=of.host, master_port=of.port, io_running=io, sql_running=sql,
            seconds_behind=behind, last_io_error="", last_sql_error="",
            gtid_io_pos=received if received is not None else applied, using_gtid="Slave_Pos",
            received_heartbeats=0, filters=filters,
        ),
    )


def dead(addr: ServerAddress) -> ServerState:
    return ServerState(address=addr, reachable=False, error="2003: Can't connect")


def states(*ss: ServerState) -> dict[ServerAddress, ServerState]:
    return {s.address: s for s in ss}


def test_most_advanced_received_wins_failover():
    e = elect(cfg(), states(dead(M), replica(A, 2, "0-1-90", "0-1-95", io="Connecting", behind=None),
                            replica(B, 3, "0-1-92", "0-1-93", io="Connecting", behind=None)), M, "failover")
    assert e.candidate == A
    assert "most advanced" in e.why and "0-1-95" in e.why


def test_applied_breaks_a_received_tie():
    e = elect(cfg(), states(dead(M), replica(A, 2, "0-1-90", "0-1-95"), replica(B, 3, "0-1-94", "0-1-95")),
              M, "failover")
    assert e.candidate == B


def test_full_tie_takes_config_order():
    e = elect(cfg(), states(master(), replica(A, 2), replica(B, 3)), M, "switchover")
    assert e.candidate == A


def test_preferred_master_wins_switchover_even_when_behind():
    e = elect(cfg(db_servers_prefered_master=B),
              states(master(), replica(A, 2, "0-1-100"), replica(B, 3, "0-1-99")), M, "switchover")
    assert e.candidate == B and e.why == "preferred master"


def test_preferred_master_behind_loses_failover():
    e = elect(cfg(db_servers_prefered_master=B),
              states(dead(M), replica(A, 2, "0-1-100"), replica(B, 3, "0-1-99")), M, "failover")
    assert e.candidate == A
    assert "preferred master 127.0.0.1:3308 received less" in e.why


def test_preferred_master_equal_wins_failover():
    e = elect(cfg(db_servers_prefered_master=B),
              states(dead(M), replica(A, 2, "0-1-100"), replica(B, 3, "0-1-100")), M, "failover")
    assert e.candidate == B


def test_ignored_host_never_elected():
    e = elect(cfg(db_servers_ignored_hosts=[A]),
              states(master(), replica(A, 2, "0-1-100"), replica(B, 3, "0-1-50")), M, "switchover")
    assert e.candidate == B
    assert e.reasons[A.url] == "is listed in db-servers-ignored-hosts"


def test_unreachable_replica_excluded():
    e = elect(cfg(), states(master(), dead(A), replica(B, 3)), M, "switchover")
    assert e.candidate == B
    assert e.reasons[A.url].startswith("is unreachable (2003")


def test_no_binlog_excluded():
    e = elect(cfg(), states(master(), replica(A, 2, log_bin=False), replica(B, 3)), M, "switchover")
    assert e.candidate == B and "log_bin is off" in e.reasons[A.url]


def test_filters_excluded():
    e = elect(cfg(), states(master(), replica(A, 2, filters="mysql"), replica(B, 3)), M, "switchover")
    assert e.reasons[A.url] == "has replication filters (mysql)"


def test_sql_thread_stopped_excluded_with_checks_only():
    ss = states(master(), replica(A, 2, sql="No"), replica(B, 3, sql="No"))
    e = elect(cfg(), ss, M, "switchover")
    assert e.candidate is None
    assert e.reasons[A.url] == "has its SQL thread stopped"
    assert "no electable switchover candidate" in e.sentence
    assert elect(cfg(check_replication_state=False), ss, M, "switchover").candidate == A


def test_io_thread_stopped_blocks_switchover_not_failover():
    ss = states(master(), replica(A, 2, io="No"), replica(B, 3, io="Connecting"))
    e = elect(cfg(), ss, M, "switchover")
    assert e.candidate is None
    assert e.reasons[A.url] == "has its IO thread stopped"
    assert e.reasons[B.url] == "has its IO thread connecting"
    assert elect(cfg(), ss, M, "failover").candidate == A


def test_lag_over_max_delay_excluded_and_off_switch():
    ss = states(master(), replica(A, 2, behind=31), replica(B, 3, behind=45))
    e = elect(cfg(), ss, M, "failover")
    assert e.candidate is None
    assert e.reasons[A.url] == "lags 31s behind the master, over failover-max-slave-delay 30s"
    assert elect(cfg(failover_max_slave_delay=-1), ss, M, "failover").candidate == A
    assert elect(cfg(failover_max_slave_delay=40), ss, M, "failover").candidate == A


def test_errant_transaction_excluded():
    errant = replica(A, 2, applied="0-1-100", binlog="0-2-101")
    e = elect(cfg(), states(master(), errant, replica(B, 3)), M, "switchover")
    assert e.candidate == B
    assert "errant transactions" in e.reasons[A.url] and "0-2-101" in e.reasons[A.url]


def test_own_history_seen_elsewhere_is_not_errant():
    # A was master before (0-2-50), the others have that history: not errant.
    a = replica(A, 2, applied="0-2-40", binlog="0-2-50")
    assert errant_transactions(a, [master("0-1-60"), a]) == []
    assert errant_transactions(a, [dead(M), a, replica(B, 3, "0-2-50")]) == []
    assert errant_transactions(a, [dead(M), a, replica(B, 3, "0-2-45")]) == ["0-2-50"]


def test_master_ahead_between_snapshots_is_not_errant():
    # Events from the master's server id beyond the slave pos are not local writes.
    a = replica(A, 2, applied="0-1-100", binlog="0-1-105")
    assert errant_transactions(a, [master("0-1-100"), a]) == []


def test_quarantined_and_maintenance_excluded():
    ss = states(master(), replica(A, 2), replica(B, 3))
    e = elect(cfg(), ss, M, "switchover", quarantined={A.url: "diverged"}, maintenance=[B])
    assert e.candidate is None
    assert e.reasons[A.url] == "is quarantined (diverged)"
    assert e.reasons[B.url] == "is in maintenance"


def test_replica_of_another_master_excluded():
    e = elect(cfg(), states(master(), replica(A, 2, of=B), replica(B, 3)), M, "switchover")
    assert e.candidate == B
    assert e.reasons[A.url] == "replicates from 127.0.0.1:3308, not from the master 127.0.0.1:3306"


def test_localhost_spelling_matches_master():
    lm = ServerAddress("localhost", 3306)
    e = elect(cfg(), states(master(), replica(A, 2, of=lm), replica(B, 3, of=lm)), M, "switchover")
    assert e.candidate == A


def test_not_a_replica_excluded():
    standalone = ServerState(address=A, reachable=True, server_id=2, log_bin=True, gtid_binlog_pos="0-1-100")
    e = elect(cfg(), states(master(), standalone, replica(B, 3)), M, "switchover")
    assert e.reasons[A.url] == "is not a replica"


def test_switchover_at_equal_gtid():
    ss = states(master("0-1-100"), replica(A, 2, "0-1-99"), replica(B, 3, "0-1-100"))
    e = elect(cfg(switchover_at_equal_gtid=True), ss, M, "switchover")
    assert e.candidate == B
    assert "not at the master's 0-1-100" in e.reasons[A.url]
    assert elect(cfg(switchover_at_equal_gtid=True), ss, M, "failover").candidate in (A, B)


@pytest.mark.parametrize("to, expected", [
    (B, None),
    (ServerAddress("10.0.0.9", 3306), "is not a server of this cluster"),
    (M, "is already the master"),
])
def test_forced_target(to, expected):
    ss = states(master(), replica(A, 2, "0-1-100"), replica(B, 3, "0-1-90"))
    e = elect(cfg(), ss, M, "switchover", to=to)
    if expected is None:
        assert e.candidate == B and e.why == "requested"
    else:
        assert e.candidate is None and e.reasons[to.url] == expected


def test_forced_target_refused_with_its_reason():
    ss = states(master(), replica(A, 2), replica(B, 3, sql="No"))
    e = elect(cfg(), ss, M, "switchover", to=B)
    assert e.candidate is None
    assert e.reasons == {B.url: "has its SQL thread stopped"}


def test_missing_state_and_no_master():
    e = elect(cfg(), {A: replica(A, 2, of=B)}, None, "failover")
    assert e.candidate == A
    assert e.reasons[B.url] == "was not monitored"


def test_io_position_never_behind_applied():
    r = replica(A, 2, applied="0-1-100", received="0-1-80")
    assert str(io_position(r)) == "0-1-100"
    r = replica(A, 2, applied="0-1-100", received="0-1-120")
    assert str(io_position(r)) == "0-1-120"
