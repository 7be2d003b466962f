"""One nemesis round: inject a fault on the master, measure, heal, wait for convergence.

Shared by ``tests/test_nemesis.py`` and ``bench/nemesis.py``. The watcher runs
in this process (``repman.watcher.loop.Watcher``), the servers are real local
``mariadbd`` of a ``Testbed``, the writers record every acknowledgement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from repman.db import ServerAddress, connect, query
from repman.lab.faults import Network, Pause, kill9, pid_of
from repman.lab.writer import Writer
from repman.local.testbed import Testbed
from repman.watcher.monitor import ClusterMonitor

_T = TypeVar("_T")

FAULTS = ("kill9", "pause", "isolate", "isolate-from-replicas", "isolate-from-watcher", "heal-during-failover",
          "kill-replica-during-failover")
NO_FAILOVER = ("isolate-from-watcher", "isolate-from-replicas")   # the watcher still reaches the master


@dataclass
class RoundResult:
    fault: str
    old: ServerAddress
    new: ServerAddress | None
    unavailable: float | None         # fault -> first acknowledged write on another server (direct writers)
    routed: float | None = None       # fault -> first acknowledged write through the router
    failed_over: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Lab:
    bed: Testbed
    monitor: ClusterMonitor
    writers: list[Writer]
    network: Network | None = None
    events: list[tuple[float, str]] = field(default_factory=list)
    faults_at: list[float] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.events.append((time.monotonic(), message))

    def pid(self, addr: ServerAddress) -> int | None:
        return pid_of(self.bed.node(addr).paths.pid_file)

    def enroll_all(self) -> None:
        if self.network is None:
            return
        for a in self.bed.addresses:
            pid = self.pid(a)
            if pid is not None and self.network.enrolled.get(a) != pid:
                self.network.enroll(a, pid)

    def reconnect_replicas(self) -> None:
        """Replicas reopen their IO connections so that they carry their cgroup's mark."""
        for a in self.bed.addresses:
            with connect(a, self.bed.admin, timeout=3) as conn:
                if query(conn, "SHOW SLAVE STATUS"):
                    query(conn, "STOP SLAVE IO_THREAD")
                    query(conn, "START SLAVE IO_THREAD")

    def master(self) -> ServerAddress:
        m = self.monitor.master
        assert m is not None, "the watcher knows no master"
        return m

    def wait(self, predicate: Callable[[], _T | None], timeout: float, what: str) -> _T:
        """The predicate's first truthy answer (``None``, ``False``, 0: not yet)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = predicate()
            if got:
                return got
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")

    def healthy(self) -> bool:
        d = self.monitor.decision
        return d is not None and d.rule == "healthy" and not self.monitor.operation_running()

    def first_ack_after_fault(self, since: float) -> float | None:
        """First acknowledgement of an insert sent after the fault, by the new master or by the
        old one when the watcher rightly did not fail over (a short pause)."""
        times = [t for w in self.writers if w.through is None if (t := w.first_ack_sent_after(since)) is not None]
        return min(times) if times else None

    def first_routed_ack(self, since: float, after: float | None) -> float | None:
        """First routed acknowledgement after the new master's first direct one."""
        if after is None:
            return None
        times = [t for w in self.writers if w.through is not None
                 if (t := w.first_ack_after(after - 0.001)) is not None]
        return min(times) if times else None

    def decided_after(self, since: float) -> bool:
        return any(t > since and "failing over to" in m for t, m in self.events)


def run_round(lab: Lab, fault: str, seconds: float = 8.0, settle: float = 4.0, timeout: float = 60.0) -> RoundResult:
    """Inject ``fault`` (``seconds``: the pause or partition length), wait, heal, converge."""
    lab.wait(lab.healthy, 60, "a healthy cluster before the fault")
    time.sleep(settle)                       # the heartbeat history covers its window again
    old = lab.master()
    others = [a for a in lab.bed.addresses if a != old]
    pid = lab.pid(old)
    assert pid is not None, f"{old} is not running"
    result = RoundResult(fault, old, None, None)
    pause: Pause | None = None
    net = lab.network
    if fault == "kill9":
        kill9(pid)
    elif fault == "pause":
        pause = Pause(pid, seconds).start()
    elif fault in ("isolate", "heal-during-failover"):
        assert net is not None
        net.isolate(old)
    elif fault == "isolate-from-replicas":
        assert net is not None
        net.cut_between(old, others)
    elif fault == "isolate-from-watcher":
        assert net is not None
        net.cut_unmarked(old)
    elif fault == "kill-replica-during-failover":
        kill9(pid)
    else:
        raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
    now = time.monotonic()                   # the fault is in place: what is sent from now on waits
    lab.faults_at.append(now)
    healed = False
    if fault == "heal-during-failover":
        lab.wait(lambda: lab.decided_after(now), timeout, "the failover decision")
        assert net is not None
        net.heal()
        healed = True
    if fault == "kill-replica-during-failover":
        lab.wait(lambda: lab.decided_after(now), timeout, "the failover decision")
        victim = next((a for a in others if a != lab.monitor.candidate), others[-1])
        vpid = lab.pid(victim)
        if vpid is not None:
            kill9(vpid)
            result.notes.append(f"killed replica {victim}")
    if fault in NO_FAILOVER:
        end = now + seconds
        while time.monotonic() < end:
            if lab.decided_after(now):
                result.failed_over = True
            time.sleep(0.05)
    else:
        first = lab.wait(lambda: lab.first_ack_after_fault(now), timeout, f"a write acknowledged after {fault}")
        result.unavailable = float(first) - now
        result.failed_over = lab.decided_after(now) and lab.monitor.master != old
        routed = lab.wait(lambda: lab.first_routed_ack(now, float(first)) or not any(
            w.through is not None for w in lab.writers), 30, "a routed write")
        result.routed = (float(routed) - now) if routed is not True else None
    # -- heal ---------------------------------------------------------------------------
    if pause is not None:
        remaining = pause.stopped_at + seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        pause.resume()
    if net is not None and not healed:
        remaining = now + seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)            # the partition lasts its length, failover or not
        net.heal()
    for a in lab.bed.addresses:
        if not lab.bed.running(a):
            lab.bed.start(a)
    lab.enroll_all()
    result.new = lab.monitor.master if lab.monitor.master != old else None
    lab.wait(lab.healthy, timeout, f"the cluster healthy again after {fault}")
    lab.wait(lambda: all_replicating(lab), timeout, "every replica following the master")
    return result


def all_replicating(lab: Lab) -> bool:
    st = lab.monitor.states
    master = lab.monitor.master
    if master is None:
        return False                         # no master known yet: nobody follows it
    for a in lab.bed.addresses:
        if a == master:
            continue
        s = st.get(a)
        if s is None or not s.reachable or s.replica is None or not s.replica.healthy \
                or s.replica.master.port != master.port:
            return False
    return lab.healthy()
