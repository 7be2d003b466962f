"""Stack config -> ClusterSpec: every invalid case of issue 2 gives one clear error naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repman.db import ServerAddress
from repman.errors import ConfigError
from repman.spec import PROVISIONING_KEYS, load_cluster_spec, spec_schema

BASE = {
    "repman:db-servers-credential": "repman:admin-pw",
    "repman:replication-credential": "repl:repl-pw",
}


def spec(**overrides):
    raw = dict(BASE)
    raw.update({f"repman:{k}": v for k, v in overrides.items()})
    return load_cluster_spec(raw, project_dir="/srv/proj")


def error(**overrides) -> str:
    with pytest.raises(ConfigError) as info:
        spec(**overrides)
    return str(info.value)


def test_defaults_give_a_three_node_local_cluster():
    s = spec()
    assert s.orchestrator == "local"
    assert s.plan.name == "x3.tiny"
    assert [n.name for n in s.nodes] == ["cluster1-db1", "cluster1-db2", "cluster1-db3"]
    assert [n.port for n in s.nodes] == [3310, 3311, 3312]
    assert [n.server_id for n in s.nodes] == [1, 2, 3]
    assert s.admin.user == "repman" and s.admin.password == "admin-pw"
    assert s.monitoring is None
    assert s.state_dir == Path("/srv/proj/.state")
    assert "admin-pw" not in repr(s)


def test_values_from_pulumi_config_strings():
    s = load_cluster_spec({
        **BASE, "repman:prov-service-plan": "x2.small", "repman:db-servers-base-port": "4000",
        "repman:prov-db-tags": '["row", "semisync"]', "repman:prov-keep-data-on-delete": "false",
        "repman:db-servers-prefered-master": "2", "repman:cluster-name": "shop",
        "kubernetes:context": "ignored: another provider's namespace",
    })
    assert s.node_count == 2 and s.base_port == 4000
    assert s.db_tags == ("row", "semisync") and s.semisync
    assert s.keep_data_on_delete is False
    assert s.preferred_master == 2 and s.preferred_index() == 2
    assert s.nodes[0].name == "shop-db1"


def test_node_override_and_hostport_preferred_master():
    s = spec(**{"prov-db-nodes": 4, "db-servers-prefered-master": "127.0.0.1:3313"})
    assert s.node_count == 4
    assert s.preferred_master == ServerAddress("127.0.0.1", 3313)
    assert s.preferred_index() == 4


def test_unknown_plan():
    msg = error(**{"prov-service-plan": "x9.foo"})
    assert msg.startswith("repman:prov-service-plan: unknown service plan 'x9.foo' (known: ")
    assert "x3.tiny" in msg


def test_unknown_tag():
    msg = error(**{"prov-db-tags": ["row", "turbo"]})
    assert msg.startswith("repman:prov-db-tags: unknown tag 'turbo'")


def test_conflicting_tags():
    assert "contradict" in error(**{"prov-db-tags": ["durable", "nodurable"]})


def test_unknown_proxy_tag():
    assert error(**{"prov-proxy-tags": ["fast"]}).startswith("repman:prov-proxy-tags: unknown tag 'fast'")


def test_unknown_backend():
    msg = error(**{"prov-orchestrator": "vmware"})
    assert msg.startswith("repman:prov-orchestrator: 'vmware' is not one of local, onpremise, kube")


@pytest.mark.parametrize("port", [0, 70000, -5])
def test_port_out_of_range(port):
    msg = error(**{"db-servers-base-port": port})
    assert msg.startswith("repman:db-servers-base-port: ")
    assert str(port) in msg


def test_ports_must_fit_for_every_node():
    assert "go past 65535" in error(**{"db-servers-base-port": 65534})


def test_port_not_a_number():
    assert error(**{"db-servers-base-port": "abc"}) == "repman:db-servers-base-port: expected an integer, got 'abc'"


@pytest.mark.parametrize("count", [0, -1, "0"])
def test_node_count_below_one(count):
    assert error(**{"prov-db-nodes": count}).startswith(
        "repman:prov-db-nodes: node count must be at least 1, got ")


def test_missing_admin_credential():
    with pytest.raises(ConfigError) as info:
        load_cluster_spec({"repman:replication-credential": "repl:x"})
    assert str(info.value).startswith("repman:db-servers-credential: is required")


def test_missing_password():
    msg = error(**{"replication-credential": "repl:"})
    assert msg == "repman:replication-credential: password of user 'repl' is missing (expected user:password)"
    msg = error(**{"db-servers-credential": "root"})
    assert msg == ("repman:db-servers-credential: expected user:password, "
                   "got a value without ':' (4 characters, not shown)")


def test_password_never_in_errors():
    msg = error(**{"monitoring-credential": "mon"})
    assert "monitoring-credential" in msg
    msg = error(**{"replication-credential": "repman:same-user"})
    assert "same-user" not in msg


def test_secret_reference_from_env(monkeypatch):
    monkeypatch.setenv("REPMAN_TEST_REPL", "repl:from-env")
    s = spec(**{"replication-credential": {"env": "REPMAN_TEST_REPL"}})
    assert s.replication.password == "from-env"
    s = spec(**{"replication-credential": '{"env": "REPMAN_TEST_REPL"}'})
    assert s.replication.password == "from-env"
    assert error(**{"replication-credential": {"env": "REPMAN_TEST_NOPE_X"}}).startswith(
        "repman:replication-credential: environment variable")


def test_unknown_key_and_bad_values():
    assert error(**{"prov-servic-plan": "x3.tiny"}).startswith("repman:prov-servic-plan: unknown key")
    assert error(**{"prov-keep-data-on-delete": "maybe"}).startswith("repman:prov-keep-data-on-delete:")
    assert error(**{"db-servers-prefered-master": "7"}).startswith(
        "repman:db-servers-prefered-master: node index 7 is not between 1 and 3")
    assert error(**{"db-servers-prefered-master": "host:99999"}).startswith("repman:db-servers-prefered-master:")
    assert error(**{"cluster-name": "Bad Name"}).startswith("repman:cluster-name:")
    assert error(**{"prov-sysbench-table-size": -1}).startswith("repman:prov-sysbench-table-size:")


def test_schema_is_json_and_complete():
    schema = json.loads(json.dumps(spec_schema()))
    names = [k["name"] for k in schema["keys"]]
    assert names == list(PROVISIONING_KEYS)
    by_name = {k["name"]: k for k in schema["keys"]}
    assert "x3.tiny" in by_name["prov-service-plan"]["choices"]
    assert "semisync" in by_name["prov-db-tags"]["choices"]
    assert by_name["prov-orchestrator"]["choices"] == ["local", "onpremise", "kube", "docker", "opensvc", "slapos"]
    assert by_name["db-servers-credential"]["secret"] and by_name["db-servers-credential"]["required"]
    assert by_name["db-servers-base-port"]["maximum"] == 65535


def test_watcher_and_api_keys_pass_through():
    s = spec(**{"failover-mode": "automatic", "monitoring-ticker": "0.5", "api-port": "10100", "haproxy": "true"})
    assert s.watcher_settings == {"failover-mode": "automatic", "monitoring-ticker": "0.5", "haproxy": "true"}
    assert s.api_settings == {"api-port": "10100"}
    assert s.setting("haproxy") is True and s.setting("monitoring-ticker") == 0.5
    assert s.setting("haproxy-write-port") == 3306  # the routing table's default


def test_watcher_keys_are_validated_and_derived_ones_refused():
    assert error(**{"failover-mode": "sometimes"}).startswith("repman:failover-mode: 'sometimes' is not one of")
    assert error(**{"api-port": "99999"}).startswith("repman:api-port: 99999 is above the maximum")
    assert error(**{"db-servers-hosts": "a:1"}) == (
        "repman:db-servers-hosts: is set by the provisioner from the deployed nodes")
