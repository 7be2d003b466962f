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

from repman.db import ServerAddress
from repman.key_access import TypedKeys
from repman.routing.base import Router, RoutingError, Topology
from repman.routing.logsink import Log, emit

__all__ = ["Router", "RoutingError", "Topology", "build_routers", "notify", "failed", "OK", "UNCHANGED"]

OK = "ok"
UNCHANGED = "unchanged"


def route_change_wait(cfg: TypedKeys) -> float:
    """Seconds to wait after the routers were told: ``switchover-wait-route-change`` (seconds, as
    repman) or ``switchover-wait-route-change-ms`` (our sub-second variant)."""
    seconds = cfg.seconds("switchover-wait-route-change")
    return seconds or cfg.integer("switchover-wait-route-change-ms") / 1000.0


def haproxy_endpoints(cfg: TypedKeys) -> list[str]:
    """Runtime API endpoints: repman's ``haproxy-servers`` hosts at ``haproxy-api-port``, then
    the endpoints given directly in ``haproxy-runtime-api-servers``."""
    port = cfg.integer("haproxy-api-port")
    derived = [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in cfg.strings("haproxy-servers")]
    return list(dict.fromkeys(derived + cfg.strings("haproxy-runtime-api-servers")))


def build_routers(cfg: Any) -> list[Router]:
    """One router per enabled proxy kind, from a validated ``ClusterConfig``."""
    routers: list[Router] = []
    if cfg.flag("haproxy"):
        from repman.routing.haproxy import HAProxyRouter
        routers += [HAProxyRouter.from_config(cfg, endpoint) for endpoint in haproxy_endpoints(cfg)]
    if cfg.flag("proxysql"):
        from repman.routing.proxysql import ProxySQLRouter
        routers += [ProxySQLRouter.from_config(cfg, host) for host in cfg.strings("proxysql-servers")]
    if cfg.flag("maxscale"):
        from repman.routing.maxscale import MaxScaleRouter
        routers += [MaxScaleRouter.from_config(cfg, host) for host in cfg.strings("maxscale-servers")]
    if cfg.flag("registry-consul"):
        from repman.routing.consul import ConsulRouter
        routers += [ConsulRouter.from_config(cfg, agent) for agent in cfg.strings("registry-servers")]
    if cfg.flag("mdbshardproxy"):
        from repman.routing.spider import SpiderRouter
        routers += [SpiderRouter.from_config(cfg, host) for host in cfg.hosts("mdbshardproxy-hosts")]
    if cfg.flag("kube-role-labels"):
        from repman.routing.kube import KubeApi, KubeLabelRouter, KubeNames
        api = KubeApi.in_cluster()
        routers.append(KubeLabelRouter(api, KubeNames(cfg.name, api.namespace)))
    if cfg.text("failover-vip-script"):
        from repman.routing.vip import VipScriptRouter
        routers.append(VipScriptRouter.from_config(cfg))
    for router in routers:
        # Not part of the Router protocol: kept on the object, read back with getattr in _dispatch.
        setattr(router, "resync_interval", cfg.seconds("proxy-resync-interval"))  # noqa: B010
    return routers


# What a router was last told: primary, healthy replicas, unhealthy servers, all servers.
Signature = tuple[ServerAddress | None, tuple[ServerAddress, ...], tuple[ServerAddress, ...], tuple[ServerAddress, ...]]


def _signature(topology: Topology) -> Signature:
    return (topology.primary, tuple(sorted(topology.replicas)), tuple(sorted(topology.unhealthy)),
            tuple(sorted(topology.servers)))


class _Slot:
    """Per-router bookkeeping kept on the router object itself (no global registry)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.busy = False
        self.signature: Signature | None = None
        self.applied_at = 0.0


_SLOTS_LOCK = threading.Lock()


def _slot(router: Router) -> _Slot:
    with _SLOTS_LOCK:
        slot = getattr(router, "_repman_slot", None)
        if slot is None:
            slot = _Slot()
            try:
                setattr(router, "_repman_slot", slot)  # noqa: B010 - not in the Router protocol
            except AttributeError:  # a slotted router: no memory, always applied
                pass
        return slot


def _budget(router: Router) -> float:
    return 3 * float(getattr(router, "timeout", 2.0)) + 1.0


def _dispatch(router: Router, topology: Topology, signature: Signature, wait: float, out: dict[str, str]) -> None:
    """Apply ``topology`` to one router unless unchanged; a change waits (up to ``wait``) for
    an update still running on that router, a monitoring tick does not."""
    name = router.name
    slot = _slot(router)
    deadline = time.monotonic() + wait
    with slot.cond:
        while slot.busy:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                out[name] = "failed: previous update still running"
                return
            slot.cond.wait(remaining)
        resync = float(getattr(router, "resync_interval", 30.0) or 0)
        if slot.signature == signature and (resync <= 0 or time.monotonic() - slot.applied_at < resync):
            out[name] = UNCHANGED
            return
        slot.busy = True
    try:
        router.apply(topology)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none escapes
        with slot.cond:
            slot.signature = None
        out[name] = f"failed: {str(exc) or type(exc).__name__}"
    else:
        with slot.cond:
            slot.signature = signature
            slot.applied_at = time.monotonic()
        out[name] = OK
    finally:
        with slot.cond:
            slot.busy = False
            slot.cond.notify_all()


def notify(routers: list[Router], topology: Topology, log: Log = None) -> dict[str, str]:
    """Tell every router about ``topology``; returns ``{router name: "ok" | "unchanged" | "failed: ..."}``.

    Never raises, and returns within about 3 x ``proxy-timeout`` (twice that when a change
    must first wait for an update still running on the same router). A router whose last
    apply succeeded with the same routing is skipped until ``proxy-resync-interval``
    passes; a failed one is applied again on every call.
    """
    out: dict[str, str] = {}
    signature = _signature(topology)
    start = time.monotonic()
    threads: list[tuple[Router, threading.Thread, float]] = []
    for router in routers:
        busy = _slot(router).busy
        wait = _budget(router) if busy and topology.reason != "monitor" else 0.0
        thread = threading.Thread(target=_dispatch, args=(router, topology, signature, wait, out),
                                  name=f"route-{router.name}", daemon=True)
        thread.start()
        threads.append((router, thread, wait + _budget(router)))
    results: dict[str, str] = {}
    for router, thread, budget in threads:
        thread.join(max(0.0, budget - (time.monotonic() - start)))
        outcome = out.get(router.name)
        results[router.name] = outcome if outcome is not None and not thread.is_alive() else \
            "failed: no answer in time (still trying in the background)"
    for name, outcome in results.items():
        if outcome.startswith("failed"):
            emit(log, f"routing {name}: {outcome[8:]}; retried on the next tick", logging.WARNING)
        elif outcome == OK and topology.reason != "monitor":
            emit(log, f"routing {name}: writes to {topology.primary} ({topology.reason})")
    return results


def failed(results: dict[str, str]) -> dict[str, str]:
    """The routers of a ``notify`` answer that did not take the change."""
    return {name: outcome for name, outcome in results.items() if outcome.startswith("failed")}
