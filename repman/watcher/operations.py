"""Running an HA operation the same way from the CLI, the API and the monitor.

Each run takes the cluster's operation lock, opens the persistent state store,
calls the operation (``switchover``/``failover``/``rejoin`` modules) and turns
any ``RepmanError`` into a refused ``OperationResult``, so callers only ever see
one result with one sentence.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable, Sequence

import pymysql

from repman.db import ServerAddress
from repman.errors import OperationRefused, RepmanError
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.oplock import OperationLock
from repman.watcher.result import OperationResult
from repman.watcher.state_store import StateStore

Log = Callable[[str], None]
LOCK_WAIT = 5.0


def store_for(cfg: ClusterConfig) -> StateStore:
    return StateStore(cfg.state_dir, keep=int(cfg.get("crash-records-keep", 20) or 20))


def build_routers(cfg: ClusterConfig, log: Log | None = None) -> list[Any]:
    """The cluster's routers; a routing mistake is reported, never fatal to the watcher."""
    try:
        from repman.routing import build_routers as build
    except ImportError:
        return []
    try:
        return list(build(cfg))
    except RepmanError as exc:
        (log or logging.getLogger("repman.watcher").warning)(f"routing disabled: {exc}")
        return []


def _operation(kind: str) -> Callable[..., OperationResult] | None:
    try:
        module = importlib.import_module(f"repman.watcher.{kind}")
    except ImportError:
        return None
    return getattr(module, kind, None)


def run_operation(
    kind: str, cfg: ClusterConfig, log: Log, routers: Sequence[Any] = (),
    to: ServerAddress | None = None, server: ServerAddress | None = None,
    lock_wait: float = LOCK_WAIT, describe: str = "",
) -> OperationResult:
    """Run ``switchover``, ``failover``, ``rejoin`` or ``reopen`` under the cluster's operation lock."""
    func = _operation(kind)
    if func is None:
        return OperationResult(False, f"{kind} is not available in this build", kind=kind)
    lock = OperationLock(cfg.state_dir)
    what = describe or (f"{kind} of {server}" if server else kind)
    if not lock.acquire(what, timeout=lock_wait):
        return OperationResult(False, f"{kind} refused: {lock.holder() or 'another operation'} is running",
                               kind=kind)
    try:
        store = store_for(cfg)
        if kind == "switchover":
            result = func(cfg, store, log, to=to, routers=tuple(routers))
        elif kind == "failover":
            result = func(cfg, store, log, routers=tuple(routers))
        elif kind in ("rejoin", "reopen", "autoseed"):
            if server is None:
                raise ValueError(f"{kind} needs a server")
            result = func(cfg, store, server, log, routers=tuple(routers))
        else:
            raise ValueError(f"unknown operation {kind}")
    except OperationRefused as exc:
        result = OperationResult(False, str(exc), kind=kind)
    except RepmanError as exc:
        result = OperationResult(False, f"{kind} failed: {exc}", kind=kind)
    except pymysql.MySQLError as exc:
        code, text = (exc.args + ("", ""))[:2]
        result = OperationResult(False, f"{kind} failed: {code} {text}".strip(), kind=kind)
    finally:
        lock.release()
    return result
