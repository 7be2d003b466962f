"""MaxScale: config checked with Python's INI parser; REST calls checked against a
recording HTTP stand-in (MaxScale cannot run here)."""

from __future__ import annotations

import base64
import configparser

import pytest

from repman.db import Credential, ServerAddress
from repman.errors import ConfigError
from repman.routing import build_routers, failed, notify
from repman.routing.base import RoutingError, Topology
from repman.routing.maxscale import MaxScaleRouter
from repman.routing.maxscale_config import MaxScaleConfig, render_maxscale_config
from repman.routing.names import server_name
from repman.watcher.cluster_config import ClusterConfig
from testkit.standins.http_recorder import RecordingHTTPServer

A, B, C = (ServerAddress("10.0.0.1", 3306), ServerAddress("10.0.0.2", 3306), ServerAddress("10.0.0.3", 3306))
AUTH = "Basic " + base64.b64encode(b"admin:mariadb").decode()


class FakeServers:
    """The canned GET /v1/servers answer; MaxScale's own names differ from ours on purpose."""

    def __init__(self, states: dict[ServerAddress, str]) -> None:
        self.states = states

    def __call__(self, req):
        if req.headers.get("Authorization") != AUTH:
            return 401, {"errors": [{"detail": "Access denied"}]}
        if req.method == "GET" and req.path == "/v1/servers":
            data = [{"id": f"server{i + 1}", "type": "servers",
                     "attributes": {"state": state, "parameters": {"address": a.host, "port": a.port}}}
                    for i, (a, state) in enumerate(self.states.items())]
            return 200, {"data": data}
        return 204, None


@pytest.fixture
def api():
    server = RecordingHTTPServer()
    yield server
    server.close()


def router_for(api, **kw):
    return MaxScaleRouter(ServerAddress("127.0.0.1", api.port), "admin", "mariadb", **kw)


def test_config_parses_as_ini():
    conf = MaxScaleConfig("c1", (A, B, C), Credential("maxuser", "pw"), Credential("mon", "mpw"),
                          monitor_follow=True)
    ini = configparser.ConfigParser(interpolation=None, strict=True)
    ini.read_string(render_maxscale_config(conf))
    names = [server_name(s) for s in (A, B, C)]
    for name, addr in zip(names, (A, B, C)):
        assert ini[name]["type"] == "server" and ini[name]["address"] == addr.host
        assert ini[name]["port"] == str(addr.port)
    assert ini["MariaDB-Monitor"]["module"] == "mariadbmon"
    assert ini["MariaDB-Monitor"]["auto_failover"] == "false"
    assert ini["MariaDB-Monitor"]["servers"].split(",") == names
    assert ini["Write-Service"]["router"] == "readwritesplit"
    assert ini["Read-Listener"]["service"] == "Read-Service" and ini["Read-Listener"]["port"] == "4008"
    for section in ini.sections():
        if section != "maxscale":
            assert ini[section]["type"] in ("server", "monitor", "service", "listener")
    # driven mode: no monitor (MaxScale refuses manual master/slave states on monitored servers)
    driven = configparser.ConfigParser(interpolation=None, strict=True)
    driven.read_string(render_maxscale_config(MaxScaleConfig(
        "c1", (A,), Credential("u", "p"), tags=("masterslave", "noreadwritesplit"))))
    assert "MariaDB-Monitor" not in driven and "Read-Service" not in driven
    assert driven["Write-Service"]["router_options"] == "master"


@pytest.mark.parametrize("kw,key", [
    (dict(monitor_follow=True), "maxscale-monitor-follow"),
    (dict(service=Credential("u", "p;w")), "db-servers-credential"),
    (dict(write_port=4000, read_port=4000), "maxscale-read-port"),
    (dict(tags=("nope",)), "prov-proxy-tags"),
])
def test_config_rejects_bad_input(kw, key):
    base = dict(cluster="c1", servers=(A,), service=Credential("u", "p"))
    base.update(kw)
    with pytest.raises(ConfigError) as err:
        render_maxscale_config(MaxScaleConfig(**base))
    assert err.value.key == key


def test_failover_sets_exact_states_demoting_first(api):
    api.handler = FakeServers({A: "Master, Running", B: "Slave, Running", C: "Slave, Running"})
    router_for(api).apply(Topology("c1", B, (C,), (A,), old_primary=A, reason="failover"))
    assert api.calls() == [
        ("GET", "/v1/servers"),
        ("PUT", "/v1/servers/server1/clear?state=master"),
        ("PUT", "/v1/servers/server1/set?state=drain"),
        ("PUT", "/v1/servers/server2/clear?state=slave"),
        ("PUT", "/v1/servers/server2/set?state=master"),
    ]
    assert all(r.headers["Authorization"] == AUTH for r in api.requests)


def test_healthy_again_clears_drain_and_maintenance(api):
    api.handler = FakeServers({A: "Drained", B: "Master, Running", C: "Maintenance"})
    router_for(api).apply(Topology("c1", B, (A, C), ()))
    assert api.calls("PUT") == [
        ("PUT", "/v1/servers/server1/clear?state=drain"),
        ("PUT", "/v1/servers/server1/set?state=slave"),
        ("PUT", "/v1/servers/server1/set?state=running"),
        ("PUT", "/v1/servers/server3/clear?state=maintenance"),
        ("PUT", "/v1/servers/server3/set?state=slave"),
        ("PUT", "/v1/servers/server3/set?state=running"),
    ]


def test_monitor_follow_only_checks_and_retries_until_it_agrees(api):
    fake = FakeServers({A: "Master, Running", B: "Slave, Running"})
    api.handler = fake
    cfg = ClusterConfig("c1", {"maxscale": True, "maxscale-servers": [f"127.0.0.1:{api.port}"],
                               "maxscale-monitor-follow": True})
    routers = build_routers(cfg)
    topology = Topology("c1", B, (A,), (), reason="switchover")
    result = notify(routers, topology)
    assert "still sees server1 as master" in failed(result)[routers[0].name]
    fake.states = {A: "Slave, Running", B: "Master, Running"}
    assert notify(routers, Topology("c1", B, (A,), (), reason="monitor")) == {routers[0].name: "ok"}
    assert api.calls("PUT") == []


def test_errors_are_routing_errors(api):
    router = MaxScaleRouter(ServerAddress("127.0.0.1", api.port), "admin", "wrong")
    api.handler = FakeServers({A: "Master, Running"})
    with pytest.raises(RoutingError, match="maxscale-user/maxscale-pass"):
        router.apply(Topology("c1", A, (), ()))
    api.handler = FakeServers({A: "Running"})
    with pytest.raises(RoutingError, match="no server with address 10.0.0.9:3306"):
        router_for(api).apply(Topology("c1", ServerAddress("10.0.0.9", 3306), (), ()))

    def monitored(req):
        if req.method == "GET":
            return FakeServers({A: "Running"})(req)
        return 403, {"errors": [{"detail": "server1 is monitored, only maintenance and drain may be set"}]}
    api.handler = monitored
    with pytest.raises(RoutingError, match="only maintenance and drain"):
        router_for(api).apply(Topology("c1", A, (), ()))
