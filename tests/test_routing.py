"""``notify``/``build_routers`` semantics: never raises, bounded time, retries, no needless pushes,
and routing keys validated with one clear line. Routers here are small in-process objects:
what is tested is the fan-out, not a proxy (the proxies have their own tests)."""

from __future__ import annotations

import threading
import time

import pytest

from repman.db import ServerAddress
from repman.errors import ConfigError
from repman.routing import OK, UNCHANGED, build_routers, failed, notify
from repman.routing.base import RoutingError, Topology
from repman.routing.keys import ROUTING_KEYS
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.keys import WATCHER_KEYS

A, B = ServerAddress("10.0.0.1", 3306), ServerAddress("10.0.0.2", 3306)


class Recording:
    def __init__(self, name: str, fail: Exception | None = None, delay: float = 0.0, timeout: float = 0.2):
        self.name = name
        self.fail = fail
        self.delay = delay
        self.timeout = timeout
        self.calls: list[Topology] = []
        self.started = threading.Event()

    def apply(self, topology: Topology) -> None:
        self.started.set()
        self.calls.append(topology)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise self.fail


def test_every_router_is_told_and_failures_never_escape():
    good = Recording("good")
    bad = Recording("bad", RoutingError("proxy said no"))
    odd = Recording("odd", KeyError("surprise"))     # even a bug in a router is contained
    lines: list[str] = []
    result = notify([good, bad, odd], Topology("c1", B, (A,), reason="failover"), lines.append)
    assert result == {"good": OK, "bad": "failed: proxy said no", "odd": "failed: 'surprise'"}
    assert failed(result) == {"bad": "failed: proxy said no", "odd": "failed: 'surprise'"}
    assert any(line.startswith("routing bad: proxy said no; retried") for line in lines)
    assert "routing good: writes to 10.0.0.2:3306 (failover)" in lines


def test_a_hanging_router_does_not_hold_the_others_or_the_caller():
    slow = Recording("slow", delay=5.0, timeout=0.2)
    fast = Recording("fast")
    t0 = time.monotonic()
    result = notify([slow, fast], Topology("c1", B, (A,), reason="failover"))
    assert time.monotonic() - t0 < 3.0
    assert result["fast"] == OK and result["slow"].startswith("failed: no answer in time")
    # still running in the background: the next tick does not pile up a second call
    again = notify([slow], Topology("c1", B, (A,), reason="monitor"))
    assert again == {"slow": "failed: previous update still running"} and len(slow.calls) == 1


def test_unchanged_routing_is_not_pushed_until_resync_and_failures_retry():
    router = Recording("r", RoutingError("down"))
    topo = Topology("c1", B, (A,))
    assert failed(notify([router], topo))
    router.fail = None
    assert notify([router], topo) == {"r": OK}                   # retried although unchanged
    assert notify([router], topo) == {"r": UNCHANGED}
    assert notify([router], Topology("c1", B, (), (A,))) == {"r": OK}    # A drained: a change
    router.resync_interval = 0.01
    time.sleep(0.05)
    assert notify([router], Topology("c1", B, (), (A,))) == {"r": OK}    # resync pushes again
    assert len(router.calls) == 4


def test_build_routers_per_enabled_kind_and_none_by_default(tmp_path):
    assert build_routers(ClusterConfig("c1", {})) == []
    cfg = ClusterConfig("c1", {
        "haproxy": True, "haproxy-servers": ["10.0.0.7"],
        "haproxy-runtime-api-servers": ["/run/h1.sock", "10.0.0.5:9999"],
        "proxysql": True, "proxysql-servers": ["px"],
        "maxscale": True, "maxscale-servers": ["mx:8990"],
        "registry-consul": True, "registry-servers": ["consul"],
        "failover-vip-script": str(tmp_path / "vip.sh"), "proxy-resync-interval": 7.0,
    })
    routers = build_routers(cfg)
    assert [r.name for r in routers] == [
        "haproxy:10.0.0.7:1999", "haproxy:/run/h1.sock", "haproxy:10.0.0.5:9999", "proxysql:px:6032",
        "maxscale:mx:8990",
        "consul:consul:8500", "failover-vip-script"]
    assert all(r.resync_interval == 7.0 for r in routers)


def test_routing_keys_do_not_collide_and_bad_values_name_the_key():
    assert set(ROUTING_KEYS).isdisjoint(WATCHER_KEYS)
    from repman.watcher.config import load_cluster
    base = {"db-servers-hosts": ["127.0.0.1:3306"], "db-servers-credential": "a:b", "replication-credential": "r:s"}
    for key, value, message in (
        ("haproxy-write-port", 70000, "above the maximum"),
        ("proxysql-writer-hostgroup", "zero", "expected an integer"),
        ("mdbshardproxy-hosts", ["nohost"], "bad host:port"),
        ("proxy-timeout", 0, "below the minimum"),
    ):
        with pytest.raises(ConfigError) as err:
            load_cluster("c1", {**base, key: value})
        assert err.value.key == f"clusters.c1.{key}" and message in str(err.value)
        assert "\n" not in str(err.value)
    cfg = load_cluster("c1", base)
    assert cfg["haproxy-write-port"] == 3306 and cfg["proxysql-reader-hostgroup"] == 1


def test_bad_endpoints_are_config_errors():
    with pytest.raises(ConfigError, match="proxysql-servers"):
        build_routers(ClusterConfig("c1", {"proxysql": True, "proxysql-servers": ["bad host!"]}))
    with pytest.raises(ConfigError, match="mdbshardproxy-user"):
        build_routers(ClusterConfig("c1", {"mdbshardproxy": True, "mdbshardproxy-hosts": [A]}))
    from repman.db import Credential
    with pytest.raises(ConfigError, match="mdbshardproxy-server-name"):
        build_routers(ClusterConfig("c1", {"mdbshardproxy": True, "mdbshardproxy-hosts": [A],
                                           "db-servers-credential": Credential("a", "b"),
                                           "mdbshardproxy-server-name": "x; DROP"}))


def test_a_change_waits_for_an_update_still_running_instead_of_being_dropped():
    router = Recording("r", delay=2.0, timeout=0.2)
    first = notify([router], Topology("c1", A, (B,)))                       # a tick; still running
    assert first["r"].startswith("failed: no answer in time")
    router.delay = 0.0
    result = notify([router], Topology("c1", B, (A,), reason="switchover"))  # waits, then applies
    assert result == {"r": OK}
    assert [t.primary for t in router.calls] == [A, B]
