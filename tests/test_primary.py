"""Who is the primary: the rules as a table, on hand-built server states (no MariaDB)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from repman.bootstrap import current_primary
from repman.db import ServerAddress
from repman.errors import BootstrapError
from repman.keys import validate_section
from repman.topology import ReplicaStatus, ServerState
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.keys import WATCHER_KEYS
from repman.watcher.primary import (
    Primary,
    cluster_primary,
    dead_primary,
    find_master,
    find_primary,
    replicated_primary,
)
from repman.watcher.state_store import CrashRecord, StateStore

M, A, B, C = (ServerAddress("127.0.0.1", p) for p in (3306, 3307, 3308, 3309))
X = ServerAddress("10.9.9.9", 3306)              # not a member of the cluster
SERVERS = [M, A, B, C]                           # C is left out of most states (as if not read)


def st(addr: ServerAddress, of: ServerAddress | None = None, reachable: bool = True, ro: bool = True) -> ServerState:
    rep = None
    if of is not None:
        rep = ReplicaStatus(of.host, of.port, "Yes", "Yes", 0, "", "", "", "Slave_Pos", 0, "")
    return ServerState(address=addr, reachable=reachable, read_only=ro, replica=rep)


def failover(old: ServerAddress, new: ServerAddress) -> CrashRecord:
    return CrashRecord("failover", 0.0, old.url, new.url, {})


def switched(old: ServerAddress, new: ServerAddress) -> CrashRecord:
    return CrashRecord("switchover", 0.0, old.url, new.url, {})


@dataclass(frozen=True)
class Case:
    states: dict[ServerAddress, ServerState]
    expected: ServerAddress | None
    rule: str
    says: str                                    # a fragment of the reason
    latest: CrashRecord | None = None
    previous: ServerAddress | None = None


DOWN = st(M, reachable=False)
CASES = {
    # test_monitor.py:58: B died, then M; A was promoted; both came back, B following M.
    "monitor-58 state without a record: the votes": Case(
        {M: st(M), A: st(A, ro=False), B: st(B, M)}, M, "followed", "followed by 1 replica", previous=A),
    "monitor-58 state with the failover record: its new master": Case(
        {M: st(M), A: st(A, ro=False), B: st(B, M)}, A, "recorded", "latest crash record's new master",
        latest=failover(M, A)),
    "record's new master read-only: the votes": Case(
        {M: st(M), A: st(A, ro=True), B: st(B, M)}, M, "followed", "followed by", latest=switched(M, A)),
    "record's new master unreachable: the votes": Case(
        {M: st(M, ro=False), A: st(A, reachable=False), B: st(B, M)}, M, "followed", "followed by",
        latest=switched(M, A)),
    "record's new master a replica: the votes": Case(
        {M: st(M, ro=False), A: st(A, M, ro=False), B: st(B, M)}, M, "followed", "followed by 2 replicas",
        latest=failover(M, A)),
    "deposed master back writable with a follower, its successor down": Case(
        {M: st(M, ro=False), A: st(A, reachable=False), B: st(B, M)}, A, "deposed", f"{M.url} is deposed",
        latest=failover(M, A)),
    "deposed master the lone writable one": Case(
        {M: st(M, ro=False), A: st(A, ro=True), B: st(B, ro=True)}, A, "deposed", "latest failover",
        latest=failover(M, A)),
    "deposed rule lapses once the successor replicates": Case(
        {M: st(M, ro=False), A: st(A, M), B: st(B, M)}, M, "followed", "followed by 2", latest=failover(M, A)),
    "a switchover deposes nobody": Case(
        {M: st(M, ro=False), A: st(A, reachable=False), B: st(B, M)}, M, "followed", "followed by",
        latest=switched(M, A)),
    "the dead master the replicas still follow": Case(
        {M: DOWN, A: st(A, M), B: st(B, M)}, M, "followed", "followed by 2 replicas"),
    "a tie keeps the previous master": Case(
        {M: st(M), A: st(A, M), B: st(B, A)}, A, "followed", "kept as the previous master", previous=A),
    "a tie goes to the writable root": Case(
        {M: st(M, ro=False), A: st(A, M), B: st(B, C), C: st(C)}, M, "followed", "the writable root"),
    "two read-only roots tie: a guess, marked": Case(
        {M: st(M), A: st(A, M), B: st(B, C), C: st(C)}, M, "tie", "replicas follow several masters"),
    "a chain: the relay's followers count for the writable root": Case(
        {M: st(M, ro=False), A: st(A, M), B: st(B, A)}, M, "followed", "followed by 2 replicas"),
    "a relay with more direct followers than the writable root": Case(
        {M: st(M, ro=False), A: st(A, M), B: st(B, A), C: st(C, A)}, M, "followed", "followed by 3 replicas"),
    "a relay under a read-only root keeps its own followers": Case(
        {M: st(M), A: st(A, M), B: st(B, A), C: st(C, A)}, A, "followed", "followed by 2 replicas"),
    "a dead root and a live read-only root tie: the live one": Case(
        {M: DOWN, A: st(A, M), B: st(B, C), C: st(C)}, C, "followed", "the live root"),
    "a chain with a dead root: the root": Case(
        {M: DOWN, A: st(A, M), B: st(B, A)}, M, "followed", "is the root"),
    "the lone writable server": Case(
        {M: st(M), A: st(A, ro=False), B: st(B)}, A, "writable", "only writable server"),
    "all standalone read-only, no previous": Case(
        {M: st(M), A: st(A), B: st(B)}, None, "none", "no server is the master"),
    "all standalone read-only: the previous master stays": Case(
        {M: st(M), A: st(A), B: st(B)}, B, "previous", "replicates from nobody", previous=B),
    "all standalone writable: split brain": Case(
        {M: st(M, ro=False), A: st(A, ro=False), B: st(B, ro=False)}, None, "none", "several writable servers"),
    "one standalone left, the others replicate from outside": Case(
        {M: st(M), A: st(A, X), B: st(B, X)}, M, "standalone", "only server that replicates from nobody"),
    "nobody reachable, no previous": Case(
        {M: DOWN, A: st(A, reachable=False), B: st(B, reachable=False)}, None, "none", "no server answers"),
    "nobody reachable: the previous master stays": Case(
        {M: DOWN, A: st(A, reachable=False), B: st(B, reachable=False)}, M, "previous", "nothing else tells",
        previous=M),
    "a replica of a non-member casts no vote": Case(
        {M: st(M, ro=False), A: st(A, X), B: st(B, X)}, M, "writable", "only writable server"),
    "a record naming a non-member is ignored": Case(
        {M: st(M, ro=False), A: st(A, M), B: st(B, M)}, M, "followed", "followed by 2", latest=failover(A, X)),
    "a state of a non-member counts for nothing": Case(
        {M: st(M, ro=False), A: st(A), X: st(X, ro=False)}, M, "writable", "only writable server"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_primary_table(name: str):
    case = CASES[name]
    found = find_primary(case.states, SERVERS, case.latest, case.previous)
    assert (found.address, found.rule) == (case.expected, case.rule), found
    assert case.says in found.reason, found.reason


def test_a_tie_nothing_breaks_is_a_guess_operations_refuse():
    tied = {M: st(M, A), A: st(A, M), B: st(B)}    # M and A follow each other: no root among them
    found = find_primary(tied, SERVERS)
    assert found.rule == "tie" and not found.decided
    assert found.address == M                      # the monitor keeps its guess: the first address
    assert found.reason == f"replicas follow several masters: {M.url}, {A.url}"
    assert find_primary({M: st(M, ro=False), A: st(A, M)}, SERVERS).decided


def test_find_master_is_the_monitors_view_without_the_deposed_rule():
    for case in CASES.values():
        recorded = case.expected if case.rule == "recorded" else None
        got = find_master(case.states, SERVERS, case.previous, recorded)
        if case.rule == "deposed":
            assert got != case.expected           # the monitor applies the deposed rule itself
        else:
            assert got == case.expected


def _cfg(tmp_path: Path) -> ClusterConfig:
    raw = {"db-servers-hosts": [a.url for a in SERVERS], "db-servers-credential": "u:p",
           "replication-credential": "r:p", "monitoring-datadir": str(tmp_path)}
    return ClusterConfig("t", validate_section(raw, [WATCHER_KEYS]))


def test_operations_read_the_persisted_record(tmp_path: Path):
    cfg = _cfg(tmp_path)
    states = {M: st(M), A: st(A, ro=False), B: st(B, M)}
    assert cluster_primary(cfg, states).address == M
    StateStore(cfg.state_dir).record_crash(failover(M, A), count_failover=True)
    found = cluster_primary(cfg, states)
    assert found == Primary(A, f"{A.url} is the latest crash record's new master and takes writes", "recorded")


def test_the_dead_master_for_a_failover(tmp_path: Path):
    cfg = _cfg(tmp_path)
    store = StateStore(cfg.state_dir)
    assert dead_primary(cfg, {M: DOWN, A: st(A, M), B: st(B, M)}, store).address == M
    alive = dead_primary(cfg, {M: st(M, ro=False), A: st(A, M), B: st(B, M)}, store)
    assert alive.address is None and f"the master {M.url} answers" in alive.reason
    # The monitor-58 state with M down: B still follows M, but A took over and takes writes.
    store.record_crash(failover(M, A), count_failover=True)
    recorded = dead_primary(cfg, {M: DOWN, A: st(A, ro=False), B: st(B, M)}, store)
    assert recorded.address is None and f"the master {A.url} answers" in recorded.reason
    all_down = {M: DOWN, A: st(A, reachable=False), B: st(B, reachable=False)}
    none = dead_primary(cfg, all_down, StateStore(tmp_path / "x"))
    assert none.address is None and "nothing to fail over: no server answers" == none.reason


def test_bootstrap_without_records_needs_replication():
    fresh = {M: st(M, ro=False), A: st(A), B: st(B)}
    found = replicated_primary(fresh, SERVERS)
    assert found.address is None and "not live" in found.reason
    assert current_primary(fresh) is None
    live = {M: st(M, ro=False), A: st(A, M), B: st(B, A)}
    assert replicated_primary(live, SERVERS).address == M
    assert current_primary(live) == M
    with pytest.raises(BootstrapError, match="several primaries"):
        current_primary({M: st(M, A), A: st(A, M), B: st(B)})
