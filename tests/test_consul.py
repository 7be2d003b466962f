"""Consul service registration checked against a recording HTTP stand-in of the agent API
(Consul cannot run here)."""

from __future__ import annotations

import pytest

from repman.db import ServerAddress
from repman.local.testbed import free_ports
from repman.routing import build_routers, failed, notify
from repman.routing.base import RoutingError, Topology
from repman.routing.consul import ConsulRouter
from repman.routing.names import server_name
from repman.watcher.cluster_config import ClusterConfig
from testkit.standins.http_recorder import RecordingHTTPServer

A, B, C = (ServerAddress("10.0.0.1", 3306), ServerAddress("10.0.0.2", 3306), ServerAddress("10.0.0.3", 3306))


def definition(sid, name, addr, role):
    return {"ID": sid, "Name": name, "Address": addr.host, "Port": addr.port,
            "Tags": ["repman", "c1", role], "Meta": {"cluster": "c1", "role": role}}


def as_agent_service(d):
    """What the agent answers in GET /v1/agent/services for a registered definition."""
    return {"ID": d["ID"], "Service": d["Name"], "Address": d["Address"], "Port": d["Port"],
            "Tags": d["Tags"], "Meta": d["Meta"]}


class Agent:
    """Canned GET /v1/agent/services answer, editable by the test."""

    def __init__(self, services=None):
        self.services = services or {}

    def __call__(self, req):
        if req.headers.get("X-Consul-Token") != "tok":
            return 403, "Permission denied"
        if req.method == "GET" and req.path == "/v1/agent/services":
            return 200, self.services
        return 200, None


@pytest.fixture
def agent():
    server = RecordingHTTPServer(Agent())
    yield server
    server.close()


def router(agent):
    return ConsulRouter(ServerAddress("127.0.0.1", agent.port), "c1", token="tok")


def test_first_registration(agent):
    router(agent).apply(Topology("c1", A, (B, C), ()))
    assert agent.calls() == [("GET", "/v1/agent/services")] + [("PUT", "/v1/agent/service/register")] * 3
    bodies = [r.body for r in agent.requests[1:]]
    assert bodies == [
        definition("write_c1", "write_c1", A, "master"),
        definition(f"read_c1_{server_name(B)}", "read_c1", B, "slave"),
        definition(f"read_c1_{server_name(C)}", "read_c1", C, "slave"),
    ]
    assert all(r.headers["X-Consul-Token"] == "tok" for r in agent.requests)


def test_failover_moves_write_and_drops_the_new_primary_from_reads(agent):
    current = [definition("write_c1", "write_c1", A, "master"),
               definition(f"read_c1_{server_name(B)}", "read_c1", B, "slave"),
               definition(f"read_c1_{server_name(C)}", "read_c1", C, "slave")]
    services = {d["ID"]: as_agent_service(d) for d in current}
    services["web"] = {"ID": "web", "Service": "web", "Address": "10.9.9.9", "Port": 80}
    agent.handler = Agent(services)
    router(agent).apply(Topology("c1", B, (C,), (A,), old_primary=A, reason="failover"))
    assert agent.calls() == [
        ("GET", "/v1/agent/services"),
        ("PUT", f"/v1/agent/service/deregister/read_c1_{server_name(B)}"),
        ("PUT", "/v1/agent/service/register"),
    ]
    assert agent.requests[-1].body == definition("write_c1", "write_c1", B, "master")


def test_no_primary_deregisters_write_and_unchanged_costs_one_get(agent):
    services = {"write_c1": as_agent_service(definition("write_c1", "write_c1", A, "master"))}
    agent.handler = Agent(services)
    router(agent).apply(Topology("c1", None, (), (A,), reason="failover"))
    assert agent.calls() == [("GET", "/v1/agent/services"), ("PUT", "/v1/agent/service/deregister/write_c1")]
    agent.clear()
    router(agent).apply(Topology("c1", A, (), ()))     # the agent still lists write_c1 at A: nothing to do
    assert agent.calls() == [("GET", "/v1/agent/services")]


def test_token_refusal_and_dead_agent_are_reported(agent):
    bad = ConsulRouter(ServerAddress("127.0.0.1", agent.port), "c1", token="nope")
    with pytest.raises(RoutingError, match="registry-consul-token"):
        bad.apply(Topology("c1", A, (), ()))
    (port,) = free_ports(1)
    cfg = ClusterConfig("c1", {"registry-consul": True, "registry-servers": [f"127.0.0.1:{port}", "consul1"],
                               "proxy-timeout": 0.5})
    routers = build_routers(cfg)
    assert [r.name for r in routers] == [f"consul:127.0.0.1:{port}", "consul:consul1:8500"]
    result = notify(routers[:1], Topology("c1", A, (), ()))
    assert failed(result) == result and "refused" in result[routers[0].name].lower()
