"""Traffic routing: proxies and registries that follow every topology change.

The watcher calls ``build_routers(cfg)`` once per cluster and ``notify(routers, topology, log)``
after every topology change and on every monitoring tick. ``notify`` never raises: each
router runs in its own thread with a time bound, a failing or dead proxy is logged and
simply tried again on the next call, so the database change always completes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from repman.routing.base import Router, RoutingError, Topology
from repman.routing.logsink import Log, emit
from repman.routing.settings import setting

__all__ = ["Router", "RoutingError", "Topology", "build_routers", "notify", "failed", "OK", "UNCHANGED"]

OK = "ok"
UNCHANGED = "unchanged"


def build_routers(cfg: Any) -> list[Router]:
    """One router per enabled proxy kind, from a validated ``ClusterConfig``."""
    routers: list[Router] = []
    if setting(cfg, "haproxy"):
        from repman.routing.haproxy import HAProxyRouter
        routers += [HAProxyRouter.from_config(cfg, endpoint) for endpoint in setting(cfg, "haproxy-servers")]
    if setting(cfg, "proxysql"):
        from repman.routing.proxysql import ProxySQLRouter
        routers += [ProxySQLRouter.from_config(cfg, host) for host in setting(cfg, "proxysql-servers")]
    if setting(cfg, "maxscale"):
        from repman.routing.maxscale import MaxScaleRouter
        routers += [MaxScaleRouter.from_config(cfg, host) for host in setting(cfg, "maxscale-servers")]
    if setting(cfg, "registry-consul"):
        from repman.routing.consul import ConsulRouter
        routers += [ConsulRouter.from_config(cfg, agent) for agent in setting(cfg, "registry-servers")]
    if setting(cfg, "mdbshardproxy"):
        from repman.routing.spider import SpiderRouter
        routers += [SpiderRouter.from_config(cfg, host) for host in setting(cfg, "mdbshardproxy-hosts")]
    if setting(cfg, "failover-vip-script"):
        from repman.routing.vip import VipScriptRouter
        routers.append(VipScriptRouter.from_config(cfg))
    for router in routers:
        router.resync_interval = float(setting(cfg, "proxy-resync-interval"))  # type: ignore[attr-defined]
    return routers


def _signature(topology: Topology) -> tuple:
    return (topology.primary, tuple(sorted(topology.replicas)), tuple(sorted(topology.unhealthy)),
            tuple(sorted(topology.servers)))


class _Slot:
    """Per-router bookkeeping kept on the router object itself (no global registry)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy = False
        self.signature: tuple | None = None
        self.applied_at = 0.0
        self.last_error = ""
        self.outcome = ""


def _slot(router: Router) -> _Slot:
    slot = getattr(router, "_repman_slot", None)
    if slot is None:
        slot = _Slot()
        try:
            setattr(router, "_repman_slot", slot)
        except AttributeError:  # a slotted router: no memory, always applied
            pass
    return slot


def _run(router: Router, topology: Topology, signature: tuple, slot: _Slot) -> None:
    try:
        router.apply(topology)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none escapes
        slot.last_error = str(exc) or type(exc).__name__
        slot.signature = None
        slot.outcome = f"failed: {slot.last_error}"
    else:
        slot.signature = signature
        slot.applied_at = time.monotonic()
        slot.last_error = ""
        slot.outcome = OK
    finally:
        slot.busy = False


def notify(routers: list[Router], topology: Topology, log: Log = None) -> dict[str, str]:
    """Tell every router about ``topology``; returns ``{router name: "ok" | "unchanged" | "failed: ..."}``.

    Never raises. A router whose last apply succeeded with the same routing is skipped
    until ``proxy-resync-interval`` passes; a failed one is applied again on every call.
    """
    results: dict[str, str] = {}
    threads: list[tuple[Router, threading.Thread]] = []
    signature = _signature(topology)
    now = time.monotonic()
    for router in routers:
        name = getattr(router, "name", repr(router))
        slot = _slot(router)
        with slot.lock:
            if slot.busy:
                results[name] = "failed: previous update still running"
                continue
            resync = float(getattr(router, "resync_interval", 30.0) or 0)
            if slot.signature == signature and (resync <= 0 or now - slot.applied_at < resync):
                results[name] = UNCHANGED
                continue
            slot.busy = True
            slot.outcome = ""
        thread = threading.Thread(target=_run, args=(router, topology, signature, slot),
                                  name=f"route-{name}", daemon=True)
        thread.start()
        threads.append((router, thread))
    for router, thread in threads:
        budget = 3 * float(getattr(router, "timeout", 2.0)) + 1.0
        thread.join(max(0.0, budget - (time.monotonic() - now)))
        if thread.is_alive():
            results[router.name] = "failed: no answer in time (still trying in the background)"
        else:
            results[router.name] = _slot(router).outcome
    for name, outcome in results.items():
        if outcome.startswith("failed"):
            emit(log, f"routing {name}: {outcome[8:]}; retried on the next tick", logging.WARNING)
        elif outcome == OK and topology.reason != "monitor":
            emit(log, f"routing {name}: writes to {topology.primary} ({topology.reason})")
    return dict(results)


def failed(results: dict[str, str]) -> dict[str, str]:
    """The routers of a ``notify`` answer that did not take the change."""
    return {name: outcome for name, outcome in results.items() if outcome.startswith("failed")}
