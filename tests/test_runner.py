"""The operation runner: one operation per cluster, a static registry, the loop woken at the end,
operator requests judged like automatic decisions (fast: no server is started)."""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from repman.db import ServerAddress
from repman.watcher import operations
from repman.watcher.analysis import Action, Decision, Facts, Request, analyse, decide_request
from repman.watcher.config import parse_config
from repman.watcher.failover import check_limits
from repman.watcher.loop import MonitorThread
from repman.watcher.monitor import ClusterMonitor
from repman.watcher.oplock import OperationLock
from repman.watcher.result import OperationResult
from repman.watcher.runner import Operation, OperationRunner, Ticket

M = ServerAddress("127.0.0.1", 1)
A = ServerAddress("127.0.0.1", 2)


def _cfg(tmp_path: Path, **keys):
    section = {"db-servers-hosts": [M.url, A.url], "db-servers-credential": "u:p", "replication-credential": "r:p",
               "monitoring-datadir": str(tmp_path)}
    section.update({k.replace("_", "-"): v for k, v in keys.items()})
    return parse_config({"clusters": {"c1": section}}).cluster()


class Gate:
    """An operation that runs until the test opens the gate, recording what it was asked."""

    def __init__(self, ok: bool = True) -> None:
        self.open = threading.Event()
        self.calls: list[tuple[Operation, str]] = []
        self.ok = ok

    def __call__(self, op: Operation) -> OperationResult:
        self.calls.append((op, threading.current_thread().name))
        assert self.open.wait(10), "the test never opened the gate"
        return OperationResult(self.ok, f"{op.kind} {'done' if self.ok else 'failed'}", kind=op.kind)


# -- the registry ----------------------------------------------------------------------------

def test_registry_holds_every_operation_the_monitor_and_the_operators_start():
    assert set(operations.OPERATIONS) == {"switchover", "failover", "rejoin", "reopen", "autoseed", "reseed",
                                          "rolling-restart"}
    assert "importlib" not in inspect.getsource(operations)


@pytest.mark.parametrize("kind", ["switchover", "failover", "rejoin", "reopen", "autoseed"])
def test_registry_entry_calls_its_module_function(kind, tmp_path, monkeypatch):
    seen = []

    def fake(*args, **kwargs):
        seen.append((args, kwargs))
        return OperationResult(True, f"{kind} faked", kind=kind)

    monkeypatch.setattr(operations, kind, fake)
    cfg = _cfg(tmp_path)
    result = operations.run_operation(kind, cfg, lambda m: None, to=A if kind == "switchover" else None,
                                      server=None if kind in ("switchover", "failover") else A)
    assert result.sentence == f"{kind} faked" and len(seen) == 1
    args, kwargs = seen[0]
    assert args[0] is cfg
    if kind == "switchover":
        assert kwargs["to"] == A
    elif kind != "failover":
        assert args[2] == A
    assert OperationLock(cfg.state_dir).holder() is None          # released after the run


def test_unknown_operation_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="unknown operation"):
        operations.run_operation("backup", _cfg(tmp_path), lambda m: None)


# -- one at a time -----------------------------------------------------------------------------

def _race(runner: OperationRunner) -> list[Ticket]:
    """Two threads submit at the same instant (a barrier releases both)."""
    barrier = threading.Barrier(2)
    tickets: list[Ticket] = []

    def go(kind: str) -> None:
        barrier.wait()
        tickets.append(runner.submit(Operation(kind, f"{kind} of x")))

    threads = [threading.Thread(target=go, args=(k,)) for k in ("failover", "switchover")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    return tickets


def test_two_threads_racing_start_exactly_one_operation():
    for _ in range(30):
        gate = Gate()
        runner = OperationRunner("c1", gate)
        tickets = _race(runner)
        accepted = [t for t in tickets if t.accepted]
        refused = [t for t in tickets if not t.accepted]
        assert len(accepted) == 1 and len(refused) == 1
        winner = accepted[0].operation
        assert refused[0].refused.sentence == (f"{refused[0].operation.kind} refused: {winner.describe} "
                                               "already in progress")
        assert runner.running == winner.describe
        gate.open.set()
        assert accepted[0].wait(5).ok
        assert runner.running == "" and len(gate.calls) == 1


def test_the_end_wakes_the_loop_and_is_recorded_with_its_duration():
    now = [100.0]
    gate = Gate(ok=False)
    runner = OperationRunner("c1", gate, clock=lambda: now[0])
    ticket = runner.submit(Operation("rejoin", "rejoin of 127.0.0.1:2", server=A))
    assert ticket.wait(0.05) is None                  # still running: no result yet
    assert not runner.wake.is_set()
    now[0] = 102.5
    gate.open.set()
    result = ticket.wait(5)
    assert result is not None and not result.ok and result.sentence == "rejoin failed"
    assert runner.wake.wait(5)
    assert runner.last_result is result
    (run,) = runner.status()
    assert (run["kind"], run["description"], run["seconds"], run["ok"]) == ("rejoin", "rejoin of 127.0.0.1:2",
                                                                          2.5, False)
    runner.submit(Operation("rejoin", "again"))          # free again once it ended
    runner.wait(5)
    assert len(runner.history) == 2


def test_history_is_short():
    runner = OperationRunner("c1", lambda op: OperationResult(True, op.describe, kind=op.kind), keep=3)
    for i in range(5):
        runner.submit(Operation("reopen", f"reopen {i}")).wait(5)
    assert [r["description"] for r in runner.status()] == ["reopen 2", "reopen 3", "reopen 4"]


def test_a_crashing_operation_is_a_failed_result_and_frees_the_runner():
    def boom(op: Operation) -> OperationResult:
        raise RuntimeError("bug")

    runner = OperationRunner("c1", boom)
    result = runner.submit(Operation("failover", "failover to x")).wait(5)
    assert result is not None and (result.ok, result.sentence) == (False, "failover crashed: bug")
    assert runner.current == ""


def test_a_failed_automatic_operation_is_retried_only_after_the_delay():
    now = [0.0]
    runner = OperationRunner("c1", lambda op: OperationResult(False, "no", kind=op.kind), clock=lambda: now[0],
                             retry_after=10.0)
    auto = Operation("rejoin", "rejoin of x", retry_key=("rejoin", "x"))
    assert runner.submit(auto).wait(5) is not None
    again = runner.submit(auto)
    assert not again.accepted and "not retried yet" in again.refused.sentence
    other = runner.submit(Operation("rejoin", "rejoin of y", retry_key=("rejoin", "y")))
    assert other.accepted and other.wait(5) is not None
    now[0] = 10.5
    assert runner.submit(auto).accepted


def test_running_names_another_process_holding_the_operation_lock(tmp_path):
    runner = OperationRunner("c1", Gate(), OperationLock(tmp_path))
    other = OperationLock(tmp_path)
    assert runner.running == ""
    assert other.acquire("switchover to 127.0.0.1:2")
    try:
        assert runner.running == "switchover to 127.0.0.1:2 (another process)"
        assert runner.current == ""
    finally:
        other.release()
    assert runner.running == ""


# -- operator requests: forced decisions through the same limits ---------------------------------

DEAD = Facts(master=M, master_reachable=False, failed_pings=5, replicas=(A,), replicas_reachable=1, candidate=A,
             servers=2, failover_mode="automatic")


@pytest.mark.parametrize("count, limit, since, window", [
    (0, 5, None, 0.0), (5, 5, None, 0.0), (4, 5, None, 0.0), (9, 0, None, 0.0),
    (0, 5, 30.0, 60.0), (0, 5, 90.0, 60.0), (5, 5, 30.0, 60.0), (0, 0, 1.0, 0.0),
])
def test_automatic_and_operator_failovers_meet_the_same_limits(count, limit, since, window):
    facts = replace(DEAD, failover_count=count, failover_limit=limit, since_last_failover=since,
                    failover_time_limit=window)
    automatic = analyse(facts)
    operator = decide_request(Request("failover"), facts)
    limited = automatic.rule in ("failover-limit", "failover-time-limit")
    assert (operator.action == Action.REFUSE) == limited
    assert operator.action == (Action.REFUSE if limited else Action.FAILOVER)
    if limited:
        assert operator.rule == automatic.rule


def test_operator_request_sentences():
    assert decide_request(Request("switchover", to=A), DEAD).sentence == \
        "switchover to 127.0.0.1:2 requested by an operator"
    assert decide_request(Request("rejoin", to=A, who="ops"), DEAD) == \
        Decision(Action.REJOIN, "rejoin of 127.0.0.1:2 requested by ops", "operator-request", A)
    busy = decide_request(Request("switchover"), replace(DEAD, operation_running="failover to 127.0.0.1:2"))
    assert (busy.action, busy.sentence) == (Action.REFUSE,
                                            "switchover refused: failover to 127.0.0.1:2 already in progress")
    assert decide_request(Request("failover"), replace(DEAD, failover_count=1, failover_limit=1)).sentence == (
        "failover refused: failover-limit 1 reached (1 failovers so far); an operator must reset the failover counter")
    with pytest.raises(ValueError):
        decide_request(Request("backup"), DEAD)


def test_failover_check_limits_asks_the_analysis(tmp_path):
    cfg = _cfg(tmp_path, failover_limit=2, failover_time_limit=600)
    store = operations.store_for(cfg)
    assert check_limits(cfg, store) is None
    state = store.load()
    state.failover_count, state.last_failover_at = 1, time.time() - 5
    store.save(state)
    assert check_limits(cfg, store).startswith("last failover 5s ago, within failover-time-limit 600s")
    state.failover_count = 2
    store.save(state)
    assert check_limits(cfg, store) == ("failover-limit 2 reached (2 failovers so far); "
                                        "an operator must reset the failover counter")


def test_an_operator_failover_past_the_limit_is_refused_before_it_runs(tmp_path):
    cfg = _cfg(tmp_path, failover_limit=1)
    store = operations.store_for(cfg)
    state = store.load()
    state.failover_count = 1
    store.save(state)
    gate = Gate()
    runner = OperationRunner("c1", gate)
    result = operations.request(runner, cfg, Request("failover"))
    assert result is not None and not result.ok and result.kind == "failover"
    assert result.sentence.startswith("failover refused: failover-limit 1 reached")
    assert gate.calls == [] and len(runner.history) == 0


def test_an_operator_request_while_one_runs_is_refused(tmp_path):
    cfg = _cfg(tmp_path)
    gate = Gate()
    runner = OperationRunner("c1", gate)
    runner.submit(Operation("rejoin", "rejoin of 127.0.0.1:2", server=A))
    result = operations.request(runner, cfg, Request("switchover", to=A), timeout=5)
    assert result is not None and result.sentence == "switchover refused: rejoin of 127.0.0.1:2 already in progress"
    gate.open.set()
    runner.wait(5)


# -- the monitor hands its decisions and the operators' requests to the runner ---------------------

@pytest.fixture
def monitor(tmp_path):
    mon = ClusterMonitor(_cfg(tmp_path), log=lambda m: None, act=False, routers=[])
    yield mon
    mon.close()


def test_reopen_decision_starts_a_reopen(monitor):
    gate = Gate()
    monitor._execute = gate
    gate.open.set()
    decision = analyse(Facts(master=M, replicas=(A,), previous_failed_pings=2, master_read_only_now=True))
    assert decision.action == Action.REOPEN
    monitor._act(decision, new_situation=True)
    monitor.wait_operation(5)
    ((op, _),) = gate.calls
    assert (op.kind, op.server, op.describe) == ("reopen", M, "reopen of 127.0.0.1:1")
    assert monitor.last_result is not None and monitor.last_result.kind == "reopen"
    monitor._act(analyse(Facts(master=M, replicas=(A,), previous_failed_pings=2)), new_situation=True)
    monitor.wait_operation(5)
    assert len(gate.calls) == 1                       # a plain recovery starts nothing


def test_operator_request_runs_on_the_runner_thread_and_shows_in_status(monitor):
    gate = Gate()
    monitor._execute = gate
    done: list[OperationResult | None] = []
    caller = threading.Thread(target=lambda: done.append(monitor.operate("switchover", to=A, timeout=10)),
                              name="http-caller")
    caller.start()
    for _ in range(200):
        if monitor.operation_running():
            break
        time.sleep(0.01)
    assert monitor.operation_running() == "switchover requested by an operator"
    assert monitor.status()["operation"] == "switchover requested by an operator"
    gate.open.set()
    caller.join(10)
    ((op, thread_name),) = gate.calls
    assert thread_name == "switchover-c1" and op.to == A
    assert done[0] is not None and done[0].ok
    assert monitor.wake.is_set()
    st = monitor.status()
    assert st["operation"] is None and st["last_operation"]["sentence"] == "switchover done"
    assert [r["kind"] for r in st["operations"]] == ["switchover"]


def test_operator_request_past_its_timeout_answers_none_and_goes_on(monitor):
    gate = Gate()
    monitor._execute = gate
    assert monitor.operate("failover", timeout=0.05) is None
    gate.open.set()
    monitor.wait_operation(5)
    assert monitor.last_result is not None and monitor.last_result.ok


# -- the loop ---------------------------------------------------------------------------------

class Ticking:
    """A monitor stand-in with a long ticker: only a wake makes it tick again soon."""

    def __init__(self) -> None:
        self.name = "c1"
        self.cfg = type("Cfg", (), {"ticker": 30.0})()
        self.scheduler = None
        self.wake = threading.Event()
        self.ticks: list[float] = []

    def tick(self) -> None:
        self.ticks.append(time.monotonic())


def test_the_loop_ticks_at_once_when_an_operation_ends_and_stops_at_once():
    mon = Ticking()
    stop = threading.Event()
    loop = MonitorThread(mon, stop)  # type: ignore[arg-type]
    loop.thread.start()
    try:
        for _ in range(200):
            if mon.ticks:
                break
            time.sleep(0.01)
        assert len(mon.ticks) == 1
        mon.wake.set()                                  # what the runner does when an operation ends
        for _ in range(200):
            if len(mon.ticks) == 2:
                break
            time.sleep(0.01)
        assert len(mon.ticks) == 2 and mon.ticks[1] - mon.ticks[0] < 2.0
    finally:
        stop.set()
        loop.halt()
        loop.thread.join(2)
    assert not loop.thread.is_alive()


# -- scheduled jobs: lanes of their own ----------------------------------------------------------

def test_a_job_never_holds_back_an_ha_operation_and_runs_one_of_its_kind_at_a_time():
    gate, job_gate = Gate(), threading.Event()

    def backup() -> OperationResult:
        assert job_gate.wait(10)
        return OperationResult(True, "backup done", kind="physical-backup")

    runner = OperationRunner("c1", gate)
    job = runner.submit(Operation("physical-backup", "scheduled physical-backup", lane="physical-backup",
                                  call=backup))
    assert job.accepted and runner.busy("physical-backup")
    assert runner.running == ""                        # the facts see no HA operation: failover stays possible
    again = runner.submit(Operation("physical-backup", "scheduled physical-backup", lane="physical-backup",
                                    call=backup))
    assert not again.accepted
    assert again.refused.sentence == "physical-backup refused: scheduled physical-backup already in progress"
    failover = runner.submit(Operation("failover", "failover to x"))
    assert failover.accepted
    gate.open.set()
    job_gate.set()
    assert failover.wait(5).ok and job.wait(5).ok
    assert [r["kind"] for r in runner.status()] == ["failover"]      # jobs are their scheduler's records
    assert runner.last_result.kind == "failover"


def test_scheduler_runs_due_jobs_on_the_runner_and_skips_a_busy_kind(tmp_path):
    from repman.watcher.scheduler import Job, Scheduler
    from repman.watcher.state_store import StateStore

    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(10)
        return "backup 1 of x: 3 bytes"

    now = [1000.0]
    runner = OperationRunner("c1", Gate())
    sched = Scheduler(StateStore(tmp_path), [Job("physical-backup", "k", "* * * * * *", slow)], clock=lambda: now[0],
                      runner=runner)
    now[0] += 1.5
    sched.poll()
    assert started.wait(5)
    assert sched.status()["jobs"][0]["running"] is True
    now[0] += 1.0
    sched.poll()                                       # due again while the first still runs
    release.set()
    runner.wait(5, lane="physical-backup")
    runs = StateStore(tmp_path).load().jobs
    assert [r["status"] for r in runs] == ["ok", "skipped"]          # recorded as running before it started
    assert next(r for r in runs if r["status"] == "ok")["sentence"] == "backup 1 of x: 3 bytes"
    assert sched.status()["jobs"][0]["running"] is False
    sched.close()


# -- the API hands operations to the runner and waits on the result ------------------------------

def test_api_operation_runs_on_the_runner_answers_202_past_its_wait_and_409_while_busy(tmp_path):
    import base64
    import http.client
    import json

    from repman.api.auth import hash_password
    from repman.api.config import api_config
    from repman.api.server import ApiServer
    from repman.watcher.loop import Watcher

    wc = parse_config({"clusters": {"c1": {
        "db-servers-hosts": [M.url, A.url], "db-servers-credential": "u:p", "replication-credential": "r:p",
        "monitoring-datadir": str(tmp_path / "state")}},
        "api": {"api-port": 0, "api-audit-log": str(tmp_path / "audit.log"),
                "api-users": {"ops": {"role": "operator", "password-hash": hash_password("ops-pw")}}}})
    watcher = Watcher(wc)                      # never started: the runner alone is at work
    mon = watcher.monitors["c1"]
    gate = Gate()
    mon._execute = gate
    server = ApiServer(api_config(wc), watcher)
    server.operation_wait = 0.2
    server.start()

    def post(path: str, body: dict) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            data = json.dumps(body).encode()
            conn.request("POST", path, body=data, headers={
                "Authorization": "Basic " + base64.b64encode(b"ops:ops-pw").decode(),
                "Content-Length": str(len(data))})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    try:
        code, body = post("/api/clusters/c1/switchover", {"to": A.url})
        assert code == 202 and body["running"] is True and body["kind"] == "switchover"
        assert set(OperationResult(True, "").as_dict()) <= set(body)
        code, busy = post("/api/clusters/c1/failover", {})
        assert code == 409
        assert busy["sentence"] == "failover refused: switchover requested by an operator already in progress"
        gate.open.set()
        mon.wait_operation(5)
        ((op, thread_name),) = gate.calls
        assert thread_name == "switchover-c1" and op.to == A
        code, body = post("/api/clusters/c1/switchover", {"to": A.url})
        assert code == 200 and body["ok"] and body["sentence"] == "switchover done"
    finally:
        server.stop()
        watcher.stop(timeout=2)
