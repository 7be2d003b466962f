"""Running an HA operation the same way from the CLI, the API and the monitor.

Each run takes the cluster's operation lock, opens the persistent state store,
calls the operation from a static registry (``OPERATIONS``: module-level imports,
so a missing module fails the watcher's start, never an operation during an
outage) and turns any ``RepmanError`` into a refused ``OperationResult``, so
callers only ever see one result with one sentence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pymysql

from repman.db import ServerAddress
from repman.errors import OperationRefused, RepmanError
from repman.rolling_restart import rolling_restart
from repman.routing import build_routers as routers_of
from repman.seeding import reseed_member
from repman.watcher.analysis import ON_A_SERVER, Action, Request, decide_request
from repman.watcher.autoseed import autoseed
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.failover import failover, limit_facts
from repman.watcher.oplock import OperationLock
from repman.watcher.rejoin import rejoin
from repman.watcher.reopen import reopen
from repman.watcher.result import OperationResult
from repman.watcher.runner import LOCK_WAIT, Operation, OperationRunner
from repman.watcher.state_store import StateStore, open_store
from repman.watcher.switchover import switchover

Log = Callable[[str], None]


@dataclass(frozen=True)
class Call:
    """Everything an operation is called with, whatever its kind."""

    cfg: ClusterConfig
    store: StateStore
    log: Log
    routers: tuple[Any, ...]
    to: ServerAddress | None = None           # switchover's chosen candidate
    server: ServerAddress | None = None       # the server a rejoin, reopen, autoseed or reseed works on
    source: ServerAddress | None = None       # reseed's donor
    base_dir: str | None = None               # reseed of a local node that is down


def _server(call: Call, kind: str) -> ServerAddress:
    if call.server is None:
        raise ValueError(f"{kind} needs a server")
    return call.server


def _reseed(call: Call) -> OperationResult:
    """A manual reseed: its refusals keep their own words (they name the server or the step)."""
    target = _server(call, "reseed")
    try:
        seeded = reseed_member(call.cfg, target, call.source, progress=call.log,
                               base_dir=Path(call.base_dir) if call.base_dir else None)
    except RepmanError as exc:
        raise OperationRefused(str(exc)) from exc
    return OperationResult(True, f"reseeded {seeded.target.url} from {seeded.source.url} at GTID {seeded.gtid} "
                                 f"({seeded.bytes_copied / 2**20:.0f} MiB): replicating",
                           kind="reseed", timings=dict(seeded.seconds))


def _rolling_restart(call: Call) -> OperationResult:
    """Runs without the cluster's lock (see ``LOCK_FREE``); its switchover takes it as any other."""
    done = rolling_restart(call.cfg, call.log, call.routers)
    return OperationResult(True, done.sentence, kind="rolling-restart", old_primary=done.old_primary,
                           new_primary=done.new_primary, timings=dict(done.seconds))


OPERATIONS: dict[str, Callable[[Call], OperationResult]] = {
    "switchover": lambda c: switchover(c.cfg, c.store, c.log, to=c.to, routers=c.routers),
    "failover": lambda c: failover(c.cfg, c.store, c.log, routers=c.routers),
    "rejoin": lambda c: rejoin(c.cfg, c.store, _server(c, "rejoin"), c.log, routers=c.routers),
    "reopen": lambda c: reopen(c.cfg, c.store, _server(c, "reopen"), c.log, routers=c.routers),
    "autoseed": lambda c: autoseed(c.cfg, c.store, _server(c, "autoseed"), c.log, routers=c.routers),
    "reseed": _reseed,
    "rolling-restart": _rolling_restart,
}
# A rolling restart lasts minutes: holding the cluster's lock all along would keep the watcher
# from failing over a master that dies meanwhile. It holds the lock for its switchover only; the
# runner still runs it alone among this process's operations.
LOCK_FREE = frozenset({"rolling-restart"})


def store_for(cfg: ClusterConfig) -> StateStore:
    return open_store(cfg.state_dir, keep=cfg.integer("crash-records-keep"))   # etcd in HA mode


def build_routers(cfg: ClusterConfig, log: Log | None = None) -> list[Any]:
    """The cluster's routers; a routing mistake is reported, never fatal to the watcher."""
    try:
        return list(routers_of(cfg))
    except RepmanError as exc:
        (log or logging.getLogger("repman.watcher").warning)(f"routing disabled: {exc}")
        return []


def run_operation(
    kind: str, cfg: ClusterConfig, log: Log, routers: Sequence[Any] = (),
    to: ServerAddress | None = None, server: ServerAddress | None = None,
    lock_wait: float = LOCK_WAIT, describe: str = "",
    source: ServerAddress | None = None, base_dir: str | None = None,
) -> OperationResult:
    """Run an operation of ``OPERATIONS`` under the cluster's operation lock (but those of
    ``LOCK_FREE``), synchronously, in the caller's thread."""
    func = OPERATIONS.get(kind)
    if func is None:
        raise ValueError(f"unknown operation {kind}")
    lock = None if kind in LOCK_FREE else OperationLock(cfg.state_dir)
    what = describe or (f"{kind} of {server}" if server else kind)
    if lock is not None and not lock.acquire(what, timeout=lock_wait):
        return OperationResult(False, f"{kind} refused: {lock.holder() or 'another operation'} is running",
                               kind=kind)
    try:
        result = func(Call(cfg, store_for(cfg), log, tuple(routers), to=to, server=server, source=source,
                           base_dir=base_dir))
    except OperationRefused as exc:
        result = OperationResult(False, str(exc), kind=kind)
    except RepmanError as exc:
        result = OperationResult(False, f"{kind} failed: {exc}", kind=kind)
    except pymysql.MySQLError as exc:
        code, text = (exc.args + ("", ""))[:2]
        result = OperationResult(False, f"{kind} failed: {code} {text}".strip(), kind=kind)
    finally:
        if lock is not None:
            lock.release()
    return result


def executor(cfg: ClusterConfig, log: Log, routers: Callable[[], Sequence[Any]]
             ) -> Callable[[Operation], OperationResult]:
    """How a runner runs an operation of ``cfg``: ``run_operation`` with the routers of the moment."""
    def execute(op: Operation) -> OperationResult:
        return run_operation(op.kind, cfg, log, routers(), to=op.to, server=op.server,
                             lock_wait=op.lock_wait, describe=op.describe, source=op.source, base_dir=op.base_dir)
    return execute


def runner_for(cfg: ClusterConfig, log: Log, routers: Callable[[], Sequence[Any]], **kwargs: Any
               ) -> OperationRunner:
    """The cluster's runner: its operations, and the cluster's lock to name another process's."""
    return OperationRunner(cfg.name, executor(cfg, log, routers), OperationLock(cfg.state_dir), **kwargs)


def request(runner: OperationRunner, cfg: ClusterConfig, req: Request, describe: str = "",
            timeout: float | None = None, source: ServerAddress | None = None,
            base_dir: str | None = None) -> OperationResult | None:
    """An operator's request: judged as a forced decision (``analysis.decide_request``: the
    operation running here, the failover limits), then run by ``runner``.

    Returns the result, or None when it still runs after ``timeout`` seconds. An operation of
    another process is met at the operation lock, which waits ``LOCK_WAIT`` for it (a fence
    holds it for a moment) before refusing.
    """
    decision = decide_request(req, limit_facts(cfg, store_for(cfg).load(), runner.current))
    if decision.action == Action.REFUSE:
        return OperationResult(False, decision.sentence, kind=req.kind)
    on_server = decision.action in ON_A_SERVER
    server, to = (req.to, None) if on_server else (None, req.to)
    ticket = runner.submit(Operation(req.kind, describe or decision.sentence, to=to, server=server,
                                     source=source, base_dir=base_dir, who=req.who))
    return ticket.wait(timeout)
