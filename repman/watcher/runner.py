"""One runner for a cluster's long operations: one at a time, each on its own thread.

Why one: the monitor's loop must keep ticking while a failover runs, an operator's
request must meet the automatic ones at one door (a check-and-set under one lock,
so two racing submissions never both start: the second hears "X already in
progress"), and the loop must hear the end at once (``wake``), not a ticker later.
Every run's result and duration is kept (the last one and a short history) for
status. Across processes the operation lock (``oplock``) still keeps a CLI's
switchover and the watcher's failover apart; ``running`` names its holder too.

HA operations share the ``cluster`` lane. A scheduled job (a backup) runs in a lane
of its own kind: one backup of a kind at a time, and never holding back a failover
(a backup of an hour must not keep a dead master dead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from repman.db import ServerAddress
from repman.watcher.ha.gate import Gate, gated
from repman.watcher.oplock import OperationLock
from repman.watcher.result import OperationResult

logger = logging.getLogger("repman.watcher")
HISTORY_KEEP = 20
CLUSTER = "cluster"              # the lane of HA operations: one per cluster
LOCK_WAIT = 5.0                  # how long an operation waits for another process's lock


@dataclass(frozen=True)
class Operation:
    """What to run: the registry's kind, its target, and how it is named while it runs."""

    kind: str
    describe: str
    to: ServerAddress | None = None            # switchover's chosen candidate
    server: ServerAddress | None = None        # the server a rejoin, reopen, autoseed or reseed works on
    source: ServerAddress | None = None        # reseed's chosen donor (default: a healthy replica)
    base_dir: str | None = None                # reseed of a local node that is down: its directory
    lock_wait: float = LOCK_WAIT
    retry_key: tuple[str, str] | None = None   # automatic runs: a failure holds this key back a while
    lane: str = CLUSTER                        # one operation at a time per lane
    call: Callable[[], OperationResult] | None = field(default=None, compare=False)  # a job's own work
    who: str = ""                              # who asked ("": the watcher itself); for the event history


@dataclass(frozen=True)
class Run:
    """One finished operation, as status shows it."""

    operation: Operation
    started_at: float                          # wall clock
    seconds: float
    result: OperationResult

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.operation.kind, "description": self.operation.describe,
                "started_at": self.started_at, "seconds": round(self.seconds, 3),
                "ok": self.result.ok, "sentence": self.result.sentence}


class Ticket:
    """A submission's answer: refused at once, or a result to wait for."""

    def __init__(self, operation: Operation, refused: OperationResult | None = None) -> None:
        self.operation = operation
        self.refused = refused
        self._result = refused
        self._done = threading.Event()
        if refused is not None:
            self._done.set()

    @property
    def accepted(self) -> bool:
        return self.refused is None

    def wait(self, timeout: float | None = None) -> OperationResult | None:
        """The result, or None when the operation still runs after ``timeout`` seconds."""
        self._done.wait(timeout)
        return self._result if self._done.is_set() else None

    def _resolve(self, result: OperationResult) -> None:
        self._result = result
        self._done.set()


Execute = Callable[[Operation], OperationResult]
Finished = Callable[[OperationResult, Operation], None]


class OperationRunner:
    """Runs one cluster's operations one at a time, off the caller's thread."""

    def __init__(self, name: str, execute: Execute, lock: OperationLock | None = None,
                 on_finished: Finished | None = None, wake: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic, retry_after: float = 10.0,
                 keep: int = HISTORY_KEEP) -> None:
        self.name = name
        self._execute = execute
        self._lock_probe = lock
        self._on_finished = on_finished
        self.wake = wake if wake is not None else threading.Event()
        self._clock = clock
        self.retry_after = retry_after
        self._mutex = threading.Lock()
        self._current: dict[str, Operation] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._retry_at: dict[tuple[str, str], float] = {}
        self.history: deque[Run] = deque(maxlen=keep)
        self.on_run: Callable[[Run], None] | None = None     # every finished run, jobs too (metrics)
        # HA: "" while this watcher leads the cluster, else why not; asked at submission and at
        # every step of a running operation (repman.watcher.ha.gate). None: one watcher, always acts.
        self.gate: Gate | None = None

    # -- what runs ----------------------------------------------------------------------
    @property
    def current(self) -> str:
        """The HA operation this process runs now ("" when none)."""
        op = self._current.get(CLUSTER)
        return op.describe if op is not None else ""

    def busy(self, lane: str) -> bool:
        return lane in self._current

    @property
    def running(self) -> str:
        """What runs now, here or in another process (the operation lock's holder), or ""."""
        here = self.current
        if here or self._lock_probe is None:
            return here
        holder = self._lock_probe.holder()
        return f"{holder.split(' (pid')[0]} (another process)" if holder else ""

    @property
    def last_result(self) -> OperationResult | None:
        return self.history[-1].result if self.history else None

    # -- submitting ---------------------------------------------------------------------
    def submit(self, operation: Operation) -> Ticket:
        """Start ``operation`` on its own thread, unless one runs already (or it failed recently)."""
        why_not = self.gate() if self.gate is not None else ""
        if why_not:
            return Ticket(operation, OperationResult(False, f"{operation.kind} refused: {why_not}",
                                                     kind=operation.kind))
        with self._mutex:
            if (busy := self._current.get(operation.lane)) is not None:
                return Ticket(operation, OperationResult(
                    False, f"{operation.kind} refused: {busy.describe} already in progress", kind=operation.kind))
            key = operation.retry_key
            if key is not None and self._clock() < self._retry_at.get(key, float("-inf")):
                return Ticket(operation, OperationResult(
                    False, f"{operation.kind} not retried yet: it failed less than {self.retry_after:g}s ago",
                    kind=operation.kind))
            ticket = Ticket(operation)
            self._current[operation.lane] = operation
            thread = threading.Thread(target=self._work, args=(operation, ticket),
                                      name=f"{operation.kind}-{self.name}",
                                      # a job finishes before the process exits, as the scheduler's pool did
                                      daemon=operation.lane == CLUSTER)
            self._threads[operation.lane] = thread
            thread.start()
        return ticket

    def _work(self, operation: Operation, ticket: Ticket) -> None:
        started, wall = self._clock(), time.time()
        try:
            with gated(self.gate):
                result = operation.call() if operation.call is not None else self._execute(operation)
        except Exception as exc:  # noqa: BLE001 - the loop must survive a bug in an operation
            logger.exception("%s: %s crashed", self.name, operation.kind)
            result = OperationResult(False, f"{operation.kind} crashed: {exc}", kind=operation.kind)
        seconds = self._clock() - started
        with self._mutex:
            if operation.lane == CLUSTER:       # a job's runs are its scheduler's records (state store)
                self.history.append(Run(operation, wall, seconds, result))
            if not result.ok and operation.retry_key is not None:
                self._retry_at[operation.retry_key] = self._clock() + self.retry_after
        try:
            if self.on_run is not None:
                self.on_run(Run(operation, wall, seconds, result))
            if self._on_finished is not None and operation.lane == CLUSTER:
                self._on_finished(result, operation)
        except Exception:  # noqa: BLE001 - a reporting bug must not leave the runner busy forever
            logger.exception("%s: reporting the end of %s failed", self.name, operation.kind)
        finally:
            with self._mutex:
                self._current.pop(operation.lane, None)
            ticket._resolve(result)
            if operation.lane == CLUSTER:
                self.wake.set()

    def wait(self, timeout: float | None = None, lane: str = CLUSTER) -> None:
        """Let the running operation of ``lane`` finish (a failover must not be cut in half)."""
        thread = self._threads.get(lane)
        if thread is not None:
            thread.join(timeout)

    def status(self) -> list[dict[str, Any]]:
        """The recent runs, oldest first."""
        with self._mutex:
            return [r.as_dict() for r in self.history]


__all__ = ["CLUSTER", "Operation", "OperationRunner", "Run", "Ticket", "HISTORY_KEEP", "LOCK_WAIT"]
