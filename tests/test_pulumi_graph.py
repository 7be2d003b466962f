"""The Pulumi program under mocks: resource graph per plan, names and parents, outputs, secrets.

Config reaches the program through ``PULUMI_CONFIG`` as with the real engine.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from testkit.pulumi_mocks import Recorder, RecordingMonitor, plain_strings, run_program

PASSWORDS = ("graph-admin-pw", "graph-repl-pw", "graph-mon-pw")
BASE_CONFIG = {
    "repman:db-servers-credential": f"repman:{PASSWORDS[0]}",
    "repman:replication-credential": f"repl:{PASSWORDS[1]}",
    "repman:monitoring-credential": f"monitor:{PASSWORDS[2]}",
    "repman:prov-state-dir": "/var/tmp/repman-graph-test",
}


def graph_outputs(typ: str, name: str, plain: dict[str, Any], deep: dict[str, Any]) -> dict[str, Any]:
    """What the local providers report back: addresses, instances, pids."""
    outs = plain
    if typ.endswith(":LocalNode"):
        outs.update(address=f"{plain['host']}:{int(plain['port'])}", instance=f"i-{name}", pid=1)
    if typ.endswith(":Bootstrap"):
        outs.update(primary=plain["servers"][0], replicas=plain["servers"][1:], actions=[])
    if typ.endswith(":LocalWatcher"):
        outs.update(config_path=f"{plain['base_dir']}/repman.yaml", api_url="", pid=2)
    if typ.endswith(":LocalHAProxy"):
        outs.update(write_address=f"127.0.0.1:{int(plain['write_port'])}",
                    read_address=f"127.0.0.1:{int(plain['read_port'])}", admin_socket="/x/haproxy.sock")
    return outs


@pytest.fixture
def program(monkeypatch):
    """Returns run(config) -> (recorder, monitor, outputs, secret_keys)."""
    def run(extra: dict[str, Any]) -> tuple[Recorder, RecordingMonitor, dict[str, Any], set[str]]:
        ran = run_program(monkeypatch, {**BASE_CONFIG, **extra}, stack="graph", outputs=graph_outputs)
        return ran.recorder, ran.monitor, ran.outputs, ran.secret
    return run


@pytest.mark.parametrize("plan, nodes", [("x1.tiny", 1), ("x2.small", 2), ("x3.tiny", 3)])
def test_graph_per_plan(program, plan, nodes):
    rec, mon, outputs, secret = program({"repman:prov-service-plan": plan, "repman:cluster-name": "shop"})
    types = {r["name"]: r["type"] for r in rec.registered}
    expected = {"shop": "repman:cluster:Cluster", "shop-bootstrap": "pulumi-python:dynamic/repman:Bootstrap",
                "shop-watcher": "pulumi-python:dynamic/repman:LocalWatcher"}
    for i in range(1, nodes + 1):
        expected[f"shop-db{i}"] = "repman:database:DatabaseService"
        expected[f"shop-db{i}-process"] = "pulumi-python:dynamic/repman:LocalNode"
    assert types == expected
    assert mon.parents["shop"].startswith("repman-graph")  # the stack
    assert mon.parents["shop-bootstrap"] == "shop" and mon.parents["shop-watcher"] == "shop"
    for i in range(1, nodes + 1):
        assert mon.parents[f"shop-db{i}"] == "shop"
        assert mon.parents[f"shop-db{i}-process"] == f"shop-db{i}"
    node_inputs = [r["inputs"] for r in rec.registered if r["type"].endswith(":LocalNode")]
    assert sorted(int(n["server_id"]) for n in node_inputs) == list(range(1, nodes + 1))
    assert sorted(int(n["port"]) for n in node_inputs) == [3310 + i for i in range(nodes)]
    assert all(n["plan"] == plan for n in node_inputs)
    assert {n["base_dir"] for n in node_inputs} == {
        f"/var/tmp/repman-graph-test/shop/db{i}" for i in range(1, nodes + 1)}
    servers = [f"127.0.0.1:{3310 + i}" for i in range(nodes)]
    assert outputs["servers"] == servers
    assert outputs["primary_endpoint"] == servers[0]
    assert outputs["replica_endpoints"] == servers[1:]
    assert outputs["plan"] == plan
    assert secret == {"admin_credential", "replication_credential", "monitoring_credential"}
    assert outputs["admin_credential"] == f"repman:{PASSWORDS[0]}"


def test_passwords_only_travel_as_secrets(program):
    rec, _, _, _ = program({})
    for r in rec.registered:
        for text in plain_strings({k: v for k, v in r["inputs"].items() if k != "__provider"}):
            assert not any(p in text for p in PASSWORDS), f"{r['name']} has a plain password input"
    node = next(r for r in rec.registered if r["type"].endswith(":LocalNode"))
    assert rpc.is_rpc_secret(node["inputs"]["admin_password"])
    boot = next(r for r in rec.registered if r["type"].endswith(":Bootstrap"))
    for key in ("admin_password", "replication_password", "monitoring_password"):
        assert rpc.is_rpc_secret(boot["inputs"][key]), key
    watcher = next(r for r in rec.registered if r["type"].endswith(":LocalWatcher"))["inputs"]
    assert rpc.is_rpc_secret(watcher["secrets"])
    section = watcher["config"]["clusters"]["cluster1"]
    assert section["db-servers-credential"] == {
        "file": "/var/tmp/repman-graph-test/cluster1/watcher/secrets/db-servers-credential"}


def test_watcher_config_from_the_stack(program):
    import yaml

    rec, _, outputs, secret = program({"repman:failover-mode": "automatic", "repman:api-port": "10123",
                                       "repman:db-servers-prefered-master": "2"})
    watcher = next(r for r in rec.registered if r["type"].endswith(":LocalWatcher"))["inputs"]
    section = watcher["config"]["clusters"]["cluster1"]
    assert section["db-servers-hosts"] == ["127.0.0.1:3310", "127.0.0.1:3311", "127.0.0.1:3312"]
    assert section["db-servers-prefered-master"] == "127.0.0.1:3311"
    assert section["failover-mode"] == "automatic"
    assert section["monitoring-datadir"] == "/var/tmp/repman-graph-test/cluster1/watcher/state"
    assert section["failover-salvage-binlog-dirs"][0] == "127.0.0.1:3310=/var/tmp/repman-graph-test/cluster1/db1/data"
    assert watcher["config"]["api"] == {"api-port": 10123}
    exported = yaml.safe_load(outputs["watcher_config"])["clusters"]["cluster1"]
    assert exported["replication-credential"] == {"env": "REPMAN_REPLICATION_CREDENTIAL"}
    assert "watcher_config" not in secret
    assert not any(p in outputs["watcher_config"] for p in PASSWORDS)


def test_no_watcher_when_the_stack_says_so(program):
    rec, _, outputs, _ = program({"repman:prov-watcher": "false"})
    assert not any(r["type"].endswith(":LocalWatcher") for r in rec.registered)
    assert outputs["watcher_config_path"] == ""


def test_haproxy_in_front_of_the_cluster(program):
    rec, mon, outputs, _ = program({"repman:haproxy": "true", "repman:haproxy-write-port": "4306",
                                    "repman:haproxy-read-port": "4307"})
    assert mon.parents["cluster1-proxy"] == "cluster1"
    assert mon.parents["cluster1-proxy-haproxy"] == "cluster1-proxy"
    proxy = next(r for r in rec.registered if r["type"].endswith(":LocalHAProxy"))["inputs"]
    assert proxy["servers"] == ["127.0.0.1:3310", "127.0.0.1:3311", "127.0.0.1:3312"]
    assert proxy["primary"] == "127.0.0.1:3310"
    assert outputs["write_endpoint"] == "127.0.0.1:4306" and outputs["read_endpoint"] == "127.0.0.1:4307"
    section = next(r for r in rec.registered if r["type"].endswith(":LocalWatcher"))["inputs"]["config"]
    cluster = section["clusters"]["cluster1"]
    assert cluster["haproxy"] is True and cluster["haproxy-runtime-api-servers"] == ["/x/haproxy.sock"]
    assert cluster["haproxy-write-port"] == 4306


def test_bootstrap_gets_the_preferred_master_and_tags(program):
    rec, _, _, _ = program({"repman:db-servers-prefered-master": "2",
                            "repman:prov-db-tags": ["gtidstrict", "row", "semisync"]})
    boot = next(r for r in rec.registered if r["type"].endswith(":Bootstrap"))["inputs"]
    assert boot["preferred_master"] == "127.0.0.1:3311"
    assert boot["semisync"] is True
    assert boot["members"] == ["i-cluster1-db1-process", "i-cluster1-db2-process", "i-cluster1-db3-process"]


def test_node_count_override(program):
    rec, _, outputs, _ = program({"repman:prov-db-nodes": "4"})
    assert len(outputs["servers"]) == 4
    assert sum(r["type"].endswith(":LocalNode") for r in rec.registered) == 4


@pytest.mark.parametrize("extra, message", [
    ({"repman:prov-service-plan": "x9.foo"}, "repman:prov-service-plan: unknown service plan 'x9.foo'"),
    ({"repman:prov-db-tags": ["row", "fast"]}, "repman:prov-db-tags: unknown tag 'fast'"),
    ({"repman:prov-orchestrator": "vmware"}, "repman:prov-orchestrator: 'vmware' is not one of"),
    ({"repman:db-servers-base-port": "70000"}, "repman:db-servers-base-port: 70000 is above the maximum 65535"),
    ({"repman:prov-db-nodes": "0"}, "repman:prov-db-nodes: node count must be at least 1, got 0"),
    ({"repman:replication-credential": "repl:"}, "repman:replication-credential: password of user 'repl' is missing"),
])
def test_bad_config_fails_before_any_resource(program, extra, message):
    with pytest.raises(pulumi.RunError) as info:
        program(extra)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_bad_config_registers_nothing(program, monkeypatch):
    seen: list[str] = []
    original = Recorder.new_resource
    monkeypatch.setattr(Recorder, "new_resource", lambda self, args: (seen.append(args.name), original(self, args))[1])
    with pytest.raises(pulumi.RunError):
        program({"repman:prov-service-plan": "x9.foo"})
    assert seen == []


def test_missing_backend_module_is_a_config_error(monkeypatch):
    from components import backends
    from repman.errors import ConfigError
    from repman.spec import load_cluster_spec

    spec = load_cluster_spec({**BASE_CONFIG, "repman:prov-orchestrator": "slapos"})
    monkeypatch.setitem(backends.MODULES, "slapos", ("components.backends.not_there",))
    with pytest.raises(ConfigError, match="backend 'slapos' is not available"):
        backends.get_backend(spec)


def test_prov_serialized_makes_each_node_wait_for_the_previous(program):
    """repman's prov-serialized: node N+1's resources depend on node N's; default: in parallel."""
    _, mon, _, _ = program({"repman:prov-serialized": "true", "repman:prov-watcher": "false"})
    assert "cluster1-db1-process" in mon.deps["cluster1-db2-process"]
    assert "cluster1-db2-process" in mon.deps["cluster1-db3-process"]
    _, mon, _, _ = program({"repman:prov-watcher": "false"})
    assert "cluster1-db1-process" not in mon.deps["cluster1-db2-process"]


def test_initial_data_and_db_settings_reach_bootstrap_and_nodes(program):
    rec, _, _, _ = program({"repman:prov-db-load-sql": "init/schema.sql", "repman:prov-db-load-csv": "shop.items.csv",
                            "repman:prov-db-expire-log-days": "3", "repman:prov-watcher": "false"})
    boot = next(r for r in rec.registered if r["type"].endswith(":Bootstrap"))
    assert [p.rsplit("/", 2)[-2:] for p in boot["inputs"]["load_sql"]] == [["init", "schema.sql"]]
    assert boot["inputs"]["load_csv"][0].endswith("/shop.items.csv")
    node = next(r for r in rec.registered if r["type"].endswith(":LocalNode"))
    assert node["inputs"]["db_settings"] == {"expire_logs_days": 3}
    plain, _, _, _ = program({"repman:prov-watcher": "false"})
    boot = next(r for r in plain.registered if r["type"].endswith(":Bootstrap"))
    node = next(r for r in plain.registered if r["type"].endswith(":LocalNode"))
    assert "load_sql" not in boot["inputs"] and "db_settings" not in node["inputs"]   # older states unchanged
