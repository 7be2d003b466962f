"""The local HAProxy dynamic provider against a real haproxy, and ProxyService under Pulumi mocks."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi
import pytest

from components.providers.local_proxy import LocalHAProxyProvider
from components.proxy_service import ProxyService, ProxyServiceArgs
from repman.db import ServerAddress
from repman.errors import ConfigError
from repman.local.haproxy_process import HAProxyFiles, haproxy_binary, instance_pids, pid_alive, read_pid
from repman.local.testbed import Testbed as LocalBed, free_ports
from repman.plans import get_plan
from repman.routing.base import Topology
from repman.routing.haproxy import HAProxyRouter
from testkit.polling import wait_until
from testkit.pulumi_mocks import Recorder, run_component
from testkit.standins.haproxy_local import port_via, ports_via


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    bed = LocalBed.create(tmp_path_factory.mktemp("provnodes"), count=2)
    yield bed
    bed.destroy()


@pytest.fixture
def props(tmp_path, nodes):
    write_port, read_port = free_ports(2)
    a, b = nodes.addresses
    p = {"base_dir": str(tmp_path / "hp"), "cluster": "shop", "servers": [a.url, b.url], "primary": a.url,
         "write_port": write_port, "read_port": read_port, "bind_address": "127.0.0.1",
         "tags": ["masterslave", "readwritesplit"], "nbthread": 1, "check": "tcp", "watcher": "",
         "provider_version": "1"}
    yield p
    LocalHAProxyProvider().delete("x", p)     # always stop what the test started


@pytest.mark.skipif(haproxy_binary() is None, reason="haproxy binary not installed")
def test_provider_create_update_delete_with_real_haproxy(props, nodes):
    provider = LocalHAProxyProvider()
    a, b = nodes.addresses
    created = provider.create(dict(props))
    outs = created.outs
    files = HAProxyFiles(Path(props["base_dir"]))
    assert outs["pid"] == read_pid(files) and pid_alive(outs["pid"])
    assert outs["admin_socket"] == str(files.socket)
    assert outs["write_address"] == f"127.0.0.1:{props['write_port']}"
    write = ServerAddress.parse(outs["write_address"])
    read = ServerAddress.parse(outs["read_address"])
    assert port_via(write, nodes.admin) == a.port
    assert ports_via(read, nodes.admin) == {b.port}       # the primary starts out of the read pool

    # Nothing changed: no diff, and an update keeps the very same process.
    assert provider.diff(created.id, outs, dict(props)).changes is False
    assert provider.update(created.id, outs, dict(props)).outs["pid"] == outs["pid"]

    # The watcher moves the leader at run time; a config change then reloads without losing it.
    HAProxyRouter(outs["admin_socket"]).apply(Topology("shop", b, (a,), servers=(a, b), reason="switchover"))
    changed = dict(props, nbthread=2)
    diff = provider.diff(created.id, outs, changed)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(created.id, outs, changed).outs
    assert updated["pid"] != outs["pid"] and pid_alive(updated["pid"])
    assert "nbthread 2" in files.config.read_text()
    assert port_via(write, nodes.admin) == b.port
    assert ports_via(read, nodes.admin) == {a.port}

    # A dead process is a change; update starts it again.
    killed = instance_pids(files)
    for pid in killed:
        os.kill(pid, 9)
    # SIGKILL is asynchronous: on a loaded machine the exit can lag.
    wait_until(lambda: not any(pid_alive(p) for p in killed), timeout=10, what=f"pids {killed} to exit", every=0.02)
    assert provider.diff(created.id, updated, changed).changes is False   # pure: state says running
    updated = provider.read(created.id, updated).outs                        # refresh records the death
    assert provider.diff(created.id, updated, changed).changes is True
    again = provider.update(created.id, updated, changed).outs
    assert pid_alive(again["pid"])

    # A hand-edited config is a change too (it would not match the rendering).
    files.config.write_text(files.config.read_text() + "\n# edited\n")
    assert provider.diff(created.id, provider.read(created.id, again).outs, changed).changes is True
    assert provider.diff(created.id, again, dict(changed, base_dir=props["base_dir"] + "2")).replaces == ["base_dir"]

    provider.delete(created.id, changed)
    assert read_pid(files) is None and instance_pids(files) == []


def test_provider_refuses_bad_input_before_starting_anything(props):
    with pytest.raises(ConfigError, match="prov-proxy-tags"):
        LocalHAProxyProvider().create(dict(props, tags=["readwritesplit", "noreadwritesplit"]))
    with pytest.raises(ConfigError, match="haproxy-read-port"):
        LocalHAProxyProvider().create(dict(props, read_port=props["write_port"]))
    assert not os.path.exists(os.path.join(props["base_dir"], "haproxy.pid"))


# ---- ProxyService under Pulumi mocks ------------------------------------------------------

def proxy_outputs(typ: str, name: str, inputs: dict[str, Any], deep: dict[str, Any]) -> dict[str, Any]:
    """What the local HAProxy and Spider providers report back."""
    outs = inputs
    if typ.endswith(":LocalHAProxy"):
        outs.update(pid=1, admin_socket=f"{inputs['base_dir']}/admin.sock",
                    write_address=f"127.0.0.1:{int(inputs['write_port'])}",
                    read_address=f"127.0.0.1:{int(inputs['read_port'])}")
    if typ.endswith(":LocalSpider"):
        outs.update(pid=1, address=f"{inputs['host']}:{int(inputs['port'])}", instance="i")
    return outs


def run_under_mocks(build) -> tuple[Recorder, dict]:
    seen: dict[str, Any] = {}

    def outputs(svc):
        return pulumi.Output.all(svc.write_address, svc.read_address, svc.admin_socket, svc.watcher_keys).apply(
            lambda v: seen.update(write=v[0], read=v[1], socket=v[2], keys=v[3]))

    return run_component(build, "proxy", outputs, proxy_outputs), seen


def test_proxy_service_on_local_backend_plans_one_haproxy():
    plan = get_plan("x3.tiny")
    servers = pulumi.Output.from_input(["127.0.0.1:3310", "127.0.0.1:3311", "127.0.0.1:3312"])
    rec, seen = run_under_mocks(lambda: ProxyService("shop-proxy", ProxyServiceArgs(
        cluster="shop", backend=SimpleNamespace(name="local"), servers=servers, state_dir="/var/tmp/st",
        tags=["masterslave", "readwritesplit"], write_port=3306, read_port=3307, primary="127.0.0.1:3310",
        plan=plan)))
    types = {r["name"]: r["type"] for r in rec.registered}
    assert types == {"shop-proxy": "repman:proxy:ProxyService",
                     "shop-proxy-haproxy": "pulumi-python:dynamic/repman:LocalHAProxy"}
    hp = next(r["plain"] for r in rec.registered if r["name"] == "shop-proxy-haproxy")
    assert hp["servers"] == ["127.0.0.1:3310", "127.0.0.1:3311", "127.0.0.1:3312"]
    assert hp["base_dir"] == "/var/tmp/st/shop-haproxy" and hp["nbthread"] == plan.proxy_cores
    assert hp["tags"] == ["masterslave", "readwritesplit"] and hp["primary"] == "127.0.0.1:3310"
    assert seen["write"] == "127.0.0.1:3306" and seen["read"] == "127.0.0.1:3307"
    assert seen["keys"] == {"haproxy": True, "haproxy-runtime-api-servers": ["/var/tmp/st/shop-haproxy/admin.sock"],
                            "haproxy-write-port": 3306, "haproxy-read-port": 3307}


def test_proxy_service_without_a_backend_proxy_registers_no_process():
    rec, seen = run_under_mocks(lambda: ProxyService("p", ProxyServiceArgs(
        cluster="c", backend=SimpleNamespace(name="kube"), servers=["10.0.0.1:3306"], state_dir="/tmp")))
    assert [r["type"] for r in rec.registered] == ["repman:proxy:ProxyService"]
    assert seen["keys"]["haproxy"] is False and seen["keys"]["haproxy-runtime-api-servers"] == []


@pytest.mark.parametrize("kw,key", [
    (dict(tags=["readwritesplit", "noreadwritesplit"]), "prov-proxy-tags"),
    (dict(tags=["fast"]), "prov-proxy-tags"),
    (dict(write_port=3306, read_port=3306), "haproxy-read-port"),
    (dict(write_port=0), "haproxy-write-port"),
    (dict(check="http"), "haproxy-check"),
])
def test_proxy_service_args_name_the_bad_key(kw, key):
    base = dict(cluster="c", backend=SimpleNamespace(name="local"), servers=["h:1"], state_dir="/tmp")
    with pytest.raises(ConfigError) as err:
        ProxyServiceArgs(**{**base, **kw}).validate()
    assert err.value.key == key


def test_proxy_service_with_a_local_spider_node():
    from components.backends.base import ClusterSecrets

    def build():
        secrets = ClusterSecrets("repman", pulumi.Output.secret("admin-pw"), "repl", pulumi.Output.secret("r"))
        return ProxyService("shop-proxy", ProxyServiceArgs(
            cluster="shop", backend=SimpleNamespace(name="local"), servers=["127.0.0.1:3310", "127.0.0.1:3311"],
            state_dir="/var/tmp/st", primary="127.0.0.1:3310", plan=get_plan("x2.tiny"), spider_port=3320,
            secrets=secrets))
    rec, seen = run_under_mocks(build)
    spider = next(r for r in rec.registered if r["type"].endswith(":LocalSpider"))
    assert spider["name"] == "shop-proxy-spider"
    assert spider["plain"]["primary"] == "127.0.0.1:3310" and spider["plain"]["server_name"] == "repman_shop"
    assert {"admin_password", "remote_password"} <= spider["secret"]          # never plain in state
    assert seen["keys"]["mdbshardproxy"] is True and seen["keys"]["mdbshardproxy-hosts"] == ["127.0.0.1:3320"]
    with pytest.raises(ConfigError, match="mdbshardproxy-user"):
        ProxyServiceArgs(cluster="c", backend=SimpleNamespace(name="local"), servers=["h:1"], state_dir="/t",
                         spider_port=3320).validate()
