"""Reseed and rolling restart enter as every operator request does: judged by ``decide_request``,
run by the cluster's runner from the static registry (fast: no server is started; the real runs
are in test_seeding.py and test_rolling_restart.py, through the CLI that now takes this path)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from repman.db import ServerAddress
from repman.errors import RepmanError
from repman.rolling_restart import RollingRestartError, RollingRestartResult
from repman.seeding import SeedResult
from repman.watcher import operations
from repman.watcher.analysis import Action, Facts, Request, decide_request
from repman.watcher.config import parse_config
from repman.watcher.oplock import OperationLock
from repman.watcher.runner import OperationRunner

M = ServerAddress("127.0.0.1", 1)
A = ServerAddress("127.0.0.1", 2)
B = ServerAddress("127.0.0.1", 3)


def _cfg(tmp_path: Path):
    section = {"db-servers-hosts": [M.url, A.url, B.url], "db-servers-credential": "u:p",
               "replication-credential": "r:p", "monitoring-datadir": str(tmp_path)}
    return parse_config({"clusters": {"c1": section}}).cluster()


@pytest.mark.parametrize("kind, to, action, sentence", [
    ("reseed", A, Action.RESEED, "reseed of 127.0.0.1:2 requested by ops"),
    ("rolling-restart", None, Action.ROLLING_RESTART, "rolling-restart requested by ops"),
    ("rejoin", A, Action.REJOIN, "rejoin of 127.0.0.1:2 requested by ops"),
    ("switchover", A, Action.SWITCHOVER, "switchover to 127.0.0.1:2 requested by ops"),
])
def test_requests_are_forced_decisions(kind, to, action, sentence):
    decision = decide_request(Request(kind, to=to, who="ops"), Facts(master=M))
    assert (decision.action, decision.sentence, decision.rule) == (action, sentence, "operator-request")


@pytest.mark.parametrize("kind", ["reseed", "rolling-restart"])
def test_requests_wait_for_no_operation_running(kind):
    decision = decide_request(Request(kind, to=A, who="ops"), Facts(master=M, operation_running="failover"))
    assert decision.action == Action.REFUSE
    assert decision.sentence == f"{kind} refused: failover already in progress"


def test_reseed_runs_on_the_runner_with_its_server_donor_and_directory(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    seen: list[tuple[ServerAddress, ServerAddress | None, Path | None, bool]] = []

    def fake_reseed(cfg_, target, source, progress, base_dir):
        holder = OperationLock(cfg.state_dir).holder() or ""
        seen.append((target, source, base_dir, "reseed" in holder))
        progress("12 MiB copied")
        return SeedResult(target=target, source=source or B, gtid="0-1-42", bytes_copied=12 * 2**20,
                          seconds={"copy": 1.5})

    monkeypatch.setattr(operations, "reseed_member", fake_reseed)
    lines: list[str] = []
    runner = operations.runner_for(cfg, lines.append, lambda: [])
    result = operations.request(runner, cfg, Request("reseed", to=A, who="ops"), source=B, base_dir="/srv/a")
    assert result is not None and result.ok, result
    assert result.sentence == "reseeded 127.0.0.1:2 from 127.0.0.1:3 at GTID 0-1-42 (12 MiB): replicating"
    assert result.kind == "reseed" and result.timings == {"copy": 1.5}
    assert seen == [(A, B, Path("/srv/a"), True)]            # it held the cluster's lock while it ran
    assert lines == ["12 MiB copied"]
    assert runner.last_result is result
    assert OperationLock(cfg.state_dir).holder() is None


def test_a_reseed_refusal_keeps_its_own_words(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)

    def refuse(*args, **kwargs):
        raise RepmanError("127.0.0.1:9 is not a server of cluster c1")

    monkeypatch.setattr(operations, "reseed_member", refuse)
    runner = operations.runner_for(cfg, lambda m: None, lambda: [])
    result = operations.request(runner, cfg, Request("reseed", to=A, who="ops"))
    assert result is not None and not result.ok
    assert result.sentence == "127.0.0.1:9 is not a server of cluster c1"


def test_a_reseed_is_refused_while_another_process_holds_the_lock(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    monkeypatch.setattr(operations, "reseed_member", lambda *a, **k: pytest.fail("must not run"))
    other = OperationLock(cfg.state_dir)
    assert other.acquire("failover of 127.0.0.1:1", timeout=1)
    try:
        result = operations.run_operation("reseed", cfg, lambda m: None, server=A, lock_wait=0.2)
    finally:
        other.release()
    assert not result.ok and result.sentence.startswith("reseed refused: failover of 127.0.0.1:1")


def test_rolling_restart_leaves_the_lock_free_for_a_failover(tmp_path, monkeypatch):
    """Minutes of restarts must not hold back the watcher's failover: only its switchover locks."""
    cfg = _cfg(tmp_path)
    inside = threading.Event()
    release = threading.Event()
    lock_free: list[bool] = []

    def fake_rolling(cfg_, log, routers):
        lock = OperationLock(cfg.state_dir)
        lock_free.append(lock.acquire("a failover elsewhere", timeout=1))
        lock.release()
        inside.set()
        assert release.wait(10)
        return RollingRestartResult(restarted=[A, B, M], old_primary=M, new_primary=A, seconds={"switchover": 0.1})

    monkeypatch.setattr(operations, "rolling_restart", fake_rolling)
    runner = OperationRunner(cfg.name, operations.executor(cfg, lambda m: None, lambda: []))
    ticket = operations.request(runner, cfg, Request("rolling-restart", who="ops"), timeout=0.0)
    assert ticket is None                                         # still running
    assert inside.wait(10)
    second = operations.request(runner, cfg, Request("reseed", to=A, who="ops"))
    assert second is not None
    assert second.sentence == "reseed refused: rolling-restart requested by ops already in progress"
    release.set()
    runner.wait(timeout=10)
    done = runner.last_result
    assert done is not None and done.ok and done.kind == "rolling-restart" and done.new_primary == A
    assert done.sentence.startswith("rolling restart done: 3 servers restarted")
    assert lock_free == [True]


def test_a_rolling_restart_refusal_is_the_result_sentence(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)

    def refuse(cfg_, log, routers):
        raise RollingRestartError("rolling restart refused: 127.0.0.1:3 not replicating (reseed first)")

    monkeypatch.setattr(operations, "rolling_restart", refuse)
    result = operations.run_operation("rolling-restart", cfg, lambda m: None)
    assert not result.ok and result.sentence == "rolling restart refused: 127.0.0.1:3 not replicating (reseed first)"
