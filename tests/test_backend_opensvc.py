"""OpenSVC backend: rendered service definitions parsed back, and the agent API calls checked
against a recording stand-in of the OpenSVC agent (no real agent runs here)."""

from __future__ import annotations

import configparser
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config

from components.providers.opensvc_service import OpenSvcServiceProvider
from repman.backends.opensvc import (
    SECTIONS,
    OpenSvcClient,
    OpenSvcError,
    OpenSvcSettings,
    ServiceNames,
    node_config_keys,
    parse_service,
    provision_node,
    purge_node,
    render_service,
    settings_from_spec,
)
from repman.db import Credential
from repman.errors import ConfigError
from repman.password_hash import native_password_hash
from repman.plans import get_plan
from repman.spec import load_cluster_spec
from testkit.pulumi_mocks import plain_strings, run_program, stack_config, unwrap
from testkit.standins.opensvc_api import RecordingOpenSvcAgent

ROOT = Path(__file__).resolve().parent.parent
API_USER, API_PASSWORD = "osvc-admin", "osvc-api-pw"
ADMIN = Credential("repman", "osvc-db-admin-pw")
SECRETS = {"repman:db-servers-credential": f"{ADMIN.user}:{ADMIN.password}",
           "repman:replication-credential": "repl:osvc-repl-pw",
           "repman:opensvc-credential": f"{API_USER}:{API_PASSWORD}"}


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[RecordingOpenSvcAgent]:
    server = RecordingOpenSvcAgent(tmp_path, API_USER, API_PASSWORD)
    try:
        yield server
    finally:
        server.close()


def settings_for(agent: RecordingOpenSvcAgent, **kw: Any) -> OpenSvcSettings:
    values = dict(api_url=agent.url, credential=Credential(API_USER, API_PASSWORD), namespace="databases",
                  ca_file=agent.ca_file, network="backend")
    values.update(kw)
    return OpenSvcSettings(**values)


def definition(**kw: Any) -> str:
    values = dict(cluster="ha1", node_name="ha1-db2", server_id=2, plan=get_plan("x3.small"),
                  image="mariadb:10.11", network="backend", nodes=("n2", "n3", "n1"))
    values.update(kw)
    return render_service(**values)


def test_rendered_definition_parses_into_the_sections_opensvc_expects():
    text = definition()
    raw = configparser.ConfigParser(interpolation=None)
    raw.read_string(text)   # a plain INI reader accepts it too
    parsed = parse_service(text)
    assert tuple(parsed) == SECTIONS
    plan = get_plan("x3.small")
    assert parsed["DEFAULT"] == {"nodes": "n2 n3 n1", "orchestrate": "ha", "topology": "failover",
                                 "placement": "nodes order"}
    assert parsed["volume#1"] == {"name": "{name}-data", "size": f"{plan.data_size_gb}g"}
    assert parsed["volume#2"]["type"] == "shm"
    assert parsed["volume#2"]["configs"].split() == [
        "{name}/repman.cnf:/conf.d/repman.cnf", "{name}/admin-init.sh:/initdb/10-repman-admin.sh"]
    pause, db = parsed["container#0"], parsed["container#1"]
    assert pause["image"] == "ghcr.io/opensvc/pause" and pause["type"] == "docker"
    assert db["image"] == "mariadb:10.11" and db["netns"] == "container#0" and db["type"] == "docker"
    assert db["command"] == "mariadbd --server-id=2 --report-host={name}"
    assert db["run_args"] == f"--cpus={plan.cores} --memory={plan.memory_mb}m"
    mounts = db["volume_mounts"].split()
    assert mounts[0] == "{name}-data:/var/lib/mysql"
    volume_names = {parsed["volume#1"]["name"], parsed["volume#2"]["name"]}
    assert {m.split(":")[0].split("/")[0] for m in mounts} == volume_names   # every mount names a volume
    assert db["secrets_environment"].split() == ["REPMAN_ADMIN_USER={name}/admin-user",
                                                 "REPMAN_ADMIN_PASSWORD_HASH={name}/admin-password-hash"]
    assert parsed["ip#1"] == {"type": "cni", "network": "backend", "netns": "container#0", "expose": "3306/tcp"}
    assert parsed["env"] == {"cluster": "ha1", "server_id": "2", "port": "3306"}
    assert "osvc" not in text and ADMIN.password not in text


def test_node_lifecycle_through_the_agent_api(agent: RecordingOpenSvcAgent):
    names = ServiceNames("databases", "ha1-db1")
    keys = node_config_keys(["gtidstrict", "row", "readonly"], get_plan("x3.small"))
    text = definition(node_name="ha1-db1", server_id=1)
    with OpenSvcClient(settings_for(agent)) as client:
        made = provision_node(client, names, text, keys, ADMIN, interval=0.05)
    assert made.path == "databases/svc/ha1-db1" and made.address.startswith("10.38.0.")
    assert agent.calls() == [
        ("POST", "/create", "databases/cfg/ha1-db1"),
        ("POST", "/key", "databases/cfg/ha1-db1"),
        ("POST", "/key", "databases/cfg/ha1-db1"),
        ("POST", "/create", "databases/sec/ha1-db1"),
        ("POST", "/key", "databases/sec/ha1-db1"),
        ("POST", "/key", "databases/sec/ha1-db1"),
        ("POST", "/create", "databases/svc/ha1-db1"),
        ("POST", "/object_monitor", "databases/svc/ha1-db1"),
        ("GET", "/object_status", "databases/svc/ha1-db1"),
        ("POST", "/object_monitor", "databases/svc/ha1-db1"),
        ("GET", "/object_status", "databases/svc/ha1-db1"),
    ]
    assert all(r.user == API_USER and r.node_header == "ANY" for r in agent.requests)
    assert not agent.errors
    bodies = [r.body for r in agent.requests]
    assert bodies[6] == {"data": {"databases/svc/ha1-db1": parse_service(text)}, "provision": False, "sync": True}
    assert bodies[7] == {"path": "databases/svc/ha1-db1", "global_expect": "provisioned"}
    assert bodies[9] == {"path": "databases/svc/ha1-db1", "global_expect": "started"}
    stored = agent.objects["databases/cfg/ha1-db1"].keys
    assert stored["repman.cnf"] == keys["repman.cnf"] and "gtid_strict_mode" in stored["repman.cnf"]
    assert agent.objects["databases/sec/ha1-db1"].keys == {"admin-user": "repman",
                                                           "admin-password-hash": native_password_hash(ADMIN.password)}
    assert agent.objects["databases/svc/ha1-db1"].avail == "up"

    agent.requests.clear()
    with OpenSvcClient(settings_for(agent)) as client:
        purge_node(client, names, keep_data=False, interval=0.05)
    assert [(r.method, r.path, r.body.get("global_expect") if isinstance(r.body, dict) else None)
            for r in agent.requests] == [
        ("POST", "/object_monitor", "stopped"), ("GET", "/object_status", None),
        ("POST", "/object_monitor", "purged"), ("POST", "/object_monitor", "deleted"),
        ("POST", "/object_monitor", "deleted"),
    ]
    assert agent.objects == {}


def test_wrong_credentials_and_wrong_ca_are_clear_errors(agent: RecordingOpenSvcAgent, tmp_path: Path):
    bad = settings_for(agent, credential=Credential(API_USER, "wrong"))
    with OpenSvcClient(bad) as client, pytest.raises(OpenSvcError) as info:
        client.create("databases/cfg/x", {})
    assert str(info.value).startswith(f"opensvc API {agent.url}: POST /create (create databases/cfg/x): HTTP 401")
    from repman.tls import ensure_server_certificates

    ensure_server_certificates(tmp_path / "other-ca", hosts=["127.0.0.1"])
    untrusted = settings_for(agent, ca_file=str(tmp_path / "other-ca" / "ca.pem"))
    with OpenSvcClient(untrusted) as client, pytest.raises(OpenSvcError) as info:
        client.status("databases/svc/x")
    assert "ConnectError" in str(info.value) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_agent_refusal_is_reported_with_its_message(agent: RecordingOpenSvcAgent):
    with OpenSvcClient(settings_for(agent)) as client, pytest.raises(OpenSvcError) as info:
        client.set_key("databases/cfg/missing", "k", "v")
    assert str(info.value).endswith("status 1: object databases/cfg/missing does not exist")


def test_provider_reads_the_api_credential_from_config_and_keeps_no_secret(agent: RecordingOpenSvcAgent):
    provider = OpenSvcServiceProvider()
    provider.configure(ConfigureRequest(Config({"repman:opensvc-credential": f"{API_USER}:{API_PASSWORD}"},
                                               "repman")))
    props = {"api_url": agent.url, "namespace": "databases", "cluster": "ha1", "node_name": "ha1-db3",
             "server_id": 3, "plan": "x3.small", "tags": ["gtidstrict", "row"], "image": "mariadb:10.11",
             "network": "backend", "nodes": ["n3", "n1", "n2"], "ca_file": agent.ca_file, "keep_data": True,
             "admin_user": ADMIN.user, "admin_password": ADMIN.password, "provider_version": "1"}
    import components.providers.opensvc_service as mod

    created = _fast(mod, lambda: provider.create(dict(props)))
    outs = created.outs
    assert created.id == "databases/svc/ha1-db3" and outs["address"].startswith("10.38.0.")
    assert ADMIN.password not in json.dumps(outs) and API_PASSWORD not in json.dumps(outs)
    assert provider.diff(created.id, outs, dict(props)).changes is False
    read = provider.read(created.id, outs)          # refresh: the agent's view of the service
    assert read.id == created.id and read.outs["address"] == outs["address"]
    assert read.outs["observed"]["provisioned"] is True
    changed = {**props, "tags": ["gtidstrict", "row", "slow"], "admin_password": "rotated-pw"}
    diff = provider.diff(created.id, outs, changed)
    assert diff.changes and not diff.replaces
    agent.requests.clear()
    updated = provider.update(created.id, outs, changed)
    assert [(r.path, r.body.get("key") if isinstance(r.body, dict) else None) for r in agent.requests] == [
        ("/key", "repman.cnf"), ("/key", "admin-init.sh"), ("/create", None), ("/key", "admin-password-hash")]
    assert "long_query_time" in agent.objects["databases/cfg/ha1-db3"].keys["repman.cnf"]
    assert agent.objects["databases/sec/ha1-db3"].keys["admin-password-hash"] == native_password_hash("rotated-pw")
    assert "rotated-pw" not in json.dumps(updated.outs)
    assert provider.diff(created.id, outs, {**props, "node_name": "ha1-db9"}).replaces == ["node_name"]
    _fast(mod, lambda: provider.delete(created.id, updated.outs))
    assert agent.objects == {}      # keep_data: the service is deleted (volumes stay with the agent)
    assert provider.read(created.id, updated.outs).id == ""      # refresh drops a service the agent lost
    assert agent.requests[-3].body["global_expect"] == "deleted"


def _fast(module: Any, action):
    """Poll the stand-in every 50 ms instead of the agent-friendly 2 s."""
    import repman.backends.opensvc as ops

    saved = ops.OpenSvcClient.wait
    ops.OpenSvcClient.wait = lambda self, path, done, what, timeout=600, interval=2.0: saved(
        self, path, done, what, timeout, 0.05)
    try:
        return action()
    finally:
        ops.OpenSvcClient.wait = saved


def test_missing_provider_credential_is_a_config_error():
    provider = OpenSvcServiceProvider()
    provider.configure(ConfigureRequest(Config({}, "repman")))
    with pytest.raises(ConfigError) as info:
        provider.client({"api_url": "https://x:1215", "namespace": "n", "network": "default"})
    assert str(info.value).startswith("repman:opensvc-credential: is required")


def test_stack_file_and_bad_settings():
    spec = load_cluster_spec({**stack_config("opensvc"), **SECRETS}, project_dir=ROOT)
    settings = settings_from_spec(spec)
    assert settings.api_url == "https://opensvc-node1.example.net:1215"
    assert settings.credential.user == API_USER and settings.nodes == ("opensvc-node1", "opensvc-node2",
                                                                       "opensvc-node3")
    for override, message in (
        ({"repman:opensvc-api-url": ""}, "repman:opensvc-api-url: is required"),
        ({"repman:opensvc-api-url": "node1:1215"}, "repman:opensvc-api-url: 'node1:1215' must be an https://"),
        ({"repman:opensvc-credential": None}, "repman:opensvc-credential: is required"),
        ({"repman:opensvc-namespace": "bad ns"}, "repman:opensvc-namespace: 'bad ns'"),
    ):
        config = {**stack_config("opensvc"), **SECRETS, **override}
        config = {k: v for k, v in config.items() if v is not None}
        with pytest.raises(ConfigError) as info:
            settings_from_spec(load_cluster_spec(config))
        assert str(info.value).startswith(message)


def test_program_graph_under_mocks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    program = run_program(monkeypatch, {**stack_config("opensvc"), **SECRETS,
                                        "repman:prov-state-dir": str(tmp_path / "state")})
    services = {r["name"]: r for r in program.of_type(":OpenSvcService")}
    assert sorted(services) == ["ha1-db1-service", "ha1-db2-service", "ha1-db3-service"]
    for i in (1, 2, 3):
        inputs = services[f"ha1-db{i}-service"]["inputs"]
        plain = unwrap(inputs)
        assert plain["node_name"] == f"ha1-db{i}" and plain["server_id"] == i
        assert plain["nodes"][0] == f"opensvc-node{i}"    # each database prefers its own agent node
        assert plain["api_url"] == "https://opensvc-node1.example.net:1215"
        assert program.monitor.options[f"ha1-db{i}-service"]["parent"] == f"ha1-db{i}"
        for text in plain_strings(inputs):
            assert ADMIN.password not in text and API_PASSWORD not in text
    assert program.outputs["backend"]["namespace"] == "databases"
    assert "ha1-bootstrap" in {r["name"] for r in program.recorder.registered}
