"""Our dynamic providers under the SDK's real provider host (``python -m pulumi.dynamic``), over gRPC.

The Pulumi CLI starts the host as a plugin in the project directory and talks to it
with protobuf: every number arrives as a float, providers arrive dill-serialized
(by reference: module path and class), and the stack config comes through
``Configure``. This test starts the host as the CLI does, in a fresh process whose
only knowledge of the project is its working directory: ``-S`` with the venv's
site-packages on ``PYTHONPATH`` leaves out the editable install's ``.pth``, so
``components`` and ``repman`` are found through the working directory alone, as
with a non-editable install. Real mariadbd nodes, a real bootstrap and a real
haproxy run through it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.providers.bootstrap import BootstrapProvider
from components.providers.local_node import LocalNodeProvider, node_spec
from components.providers.local_proxy import LocalHAProxyProvider
from components.providers.local_watcher import LocalWatcherProvider
from components.providers.observed import integral
from components.providers.opensvc_service import OpenSvcServiceProvider
from components.providers.ssh_node import SshNodeProvider, _outs as ssh_outs
from repman.backends.onpremise import NodeState
from repman.db import ServerAddress, query, session
from repman.local.haproxy_process import haproxy_binary
from repman.local.mariadb import pid_alive
from repman.local.node import crash_node
from repman.local.ports import free_port_block
from repman.local.watcher import WatcherFiles, running_pid
from testkit.env import needs_mariadb
from testkit.local_watcher import watcher_props
from testkit.provider_host import ADMIN, CONFIG, OSVC, REPL, ROOT, Host, plain, struct, urn
from testkit.standins.opensvc_api import RecordingOpenSvcAgent


@pytest.fixture
def host():
    h = Host(ROOT)
    h.stub.Configure(provider_pb2.ConfigureRequest(args=struct(CONFIG)))
    yield h
    h.close()


def test_host_loads_providers_from_the_working_directory_only():
    """The same fresh process started elsewhere cannot import the project: the cwd is what it knows."""
    purelib = sysconfig.get_paths()["purelib"]
    done = subprocess.run([sys.executable, "-S", "-c", "import components"], cwd="/", capture_output=True,
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": purelib})
    assert done.returncode != 0 and b"No module named 'components'" in done.stderr


@pytest.mark.slow
@needs_mariadb
def test_local_nodes_bootstrap_haproxy_and_watcher_through_the_provider_host(host: Host, tmp_path: Path) -> None:
    base = free_port_block(2)
    node_blob = serialize_provider(LocalNodeProvider())
    nodes: list[tuple[str, str, dict, dict]] = []      # urn, id, outputs, inputs
    try:
        for i in (1, 2):
            news = {"__provider": node_blob, "base_dir": str(tmp_path / f"db{i}"), "server_id": i,
                    "port": base + i - 1, "host": "127.0.0.1", "plan": "x1.tiny",
                    "tags": ["gtidstrict", "row", "readonly", "smallredolog", "nodurable"],
                    "admin_user": ADMIN.user, "admin_password": ADMIN.password, "max_connections": 200,
                    "keep_data": False, "ca_dir": "", "provider_version": "1"}
            u = urn("LocalNode", f"db{i}")
            checked = host.check(u, {}, news)
            id_, outs = host.create(u, checked)
            assert outs["address"] == f"127.0.0.1:{base + i - 1}"          # no "3306.0" after the wire
            assert ADMIN.password not in repr(outs)
            nodes.append((u, id_, outs, checked))

        # Old outputs come back as the engine stores and sends them: every number a float.
        u, id_, outs, inputs = nodes[1]
        olds = plain(struct(outs))
        assert isinstance(olds["port"], float) and isinstance(olds["server_id"], float)
        assert host.diff(u, id_, olds, inputs).changes == provider_pb2.DiffResponse.DIFF_NONE
        assert host.diff(u, id_, olds, {**inputs, "server_id": 9}).replaces == ["server_id"]

        # Read records a crash; Diff (pure) then asks for an Update, which restarts the server.
        crashed = crash_node(node_spec(integral(outs)))
        while crashed and pid_alive(crashed):           # SIGKILL is asynchronous
            time.sleep(0.02)
        rid, read = host.read(u, id_, outs)
        assert rid == id_ and read["observed"]["running"] is False
        assert host.diff(u, id_, read, inputs).changes == provider_pb2.DiffResponse.DIFF_SOME
        outs = host.update(u, id_, read, {**inputs, "tags": inputs["tags"] + ["slow"]})
        assert outs["address"] == f"127.0.0.1:{base + 1}" and pid_alive(int(outs["pid"]))
        assert outs["observed"]["running"] is True
        nodes[1] = (u, id_, outs, inputs)

        # The bootstrap wires replication between the two nodes, for real, through the host.
        boot_blob = serialize_provider(BootstrapProvider())
        servers = [n[2]["address"] for n in nodes]
        bnews = {"__provider": boot_blob, "servers": servers, "members": servers, "admin_user": ADMIN.user,
                 "admin_password": ADMIN.password, "replication_user": REPL.user,
                 "replication_password": REPL.password, "monitoring_user": "", "monitoring_password": "",
                 "preferred_master": servers[0], "semisync": False, "sysbench_table_size": 0,
                 "readonly_replicas": True, "provider_version": "1"}
        bu = urn("Bootstrap", "bootstrap")
        bchecked = host.check(bu, {}, bnews)
        bid, bouts = host.create(bu, bchecked)
        assert bouts["primary"] == servers[0] and bouts["replicas"] == [servers[1]]
        assert REPL.password not in repr(bouts)
        with session(ServerAddress.parse(servers[1]), ADMIN) as conn:
            assert query(conn, "SHOW SLAVE STATUS")[0]["Using_Gtid"] == "Slave_Pos"
        # Read sees the live primary with the credential from Configure (state holds no password).
        _, bread = host.read(bu, bid, bouts)
        assert bread["observed_primary"] == servers[0]
        assert host.diff(bu, bid, bread, bchecked).changes == provider_pb2.DiffResponse.DIFF_NONE
        bouts = host.update(bu, bid, bread, {**bchecked, "semisync": True})
        assert bouts["primary"] == servers[0]

        if haproxy_binary() is not None:
            ports = free_port_block(2)
            pnews = {"__provider": serialize_provider(LocalHAProxyProvider()), "base_dir": str(tmp_path / "hp"),
                     "cluster": "c1", "servers": servers, "primary": servers[0], "write_port": ports,
                     "read_port": ports + 1, "bind_address": "127.0.0.1", "tags": ["masterslave", "readwritesplit"],
                     "nbthread": 1, "check": "tcp", "watcher": "", "provider_version": "1"}
            pu = urn("LocalHAProxy", "proxy")
            pid_, pouts = host.create(pu, host.check(pu, {}, pnews))
            try:
                assert pouts["write_address"] == f"127.0.0.1:{ports}"
                assert host.diff(pu, pid_, plain(struct(pouts)), pnews).changes == provider_pb2.DiffResponse.DIFF_NONE
                _, pread = host.read(pu, pid_, pouts)
                assert pread["observed"]["running"] is True
                pouts = host.update(pu, pid_, pread, {**pnews, "nbthread": 2})
                assert "nbthread 2" in (tmp_path / "hp" / "haproxy.cfg").read_text()
            finally:
                host.delete(pu, pid_, pouts)
            assert not pid_alive(int(pouts["pid"]))

        # The detached watcher: its YAML keeps integer ports although every number came as a float.
        api_port = free_port_block(1)
        wnews = {"__provider": serialize_provider(LocalWatcherProvider()),
                 **watcher_props(tmp_path / "w", servers, api_port)}
        wu = urn("LocalWatcher", "watcher")
        wid, wouts = host.create(wu, host.check(wu, {}, wnews))
        try:
            files = WatcherFiles(tmp_path / "w")
            assert running_pid(files) == int(wouts["pid"])
            assert f"api-port: {api_port}\n" in files.config.read_text() and ".0\n" not in files.config.read_text()
            assert "w-admin-pw" not in repr(wouts)
            assert host.diff(wu, wid, plain(struct(wouts)), wnews).changes == provider_pb2.DiffResponse.DIFF_NONE
            os.kill(int(wouts["pid"]), signal.SIGKILL)
            while pid_alive(int(wouts["pid"])):
                time.sleep(0.02)
            _, wread = host.read(wu, wid, wouts)
            assert wread["observed"]["running"] is False
            assert host.diff(wu, wid, wread, wnews).changes == provider_pb2.DiffResponse.DIFF_SOME
            wouts = host.update(wu, wid, wread, wnews)
            assert running_pid(files) == int(wouts["pid"])
        finally:
            host.delete(wu, wid, wouts)
        assert running_pid(WatcherFiles(tmp_path / "w")) is None
        host.delete(bu, bid, bouts)
    finally:
        for u, id_, outs, _ in reversed(nodes):
            host.delete(u, id_, outs)
    for _, _, outs, _ in nodes:
        assert not pid_alive(int(outs["pid"]))
    assert not (tmp_path / "db1" / "data").exists()                  # keep_data false honoured


def test_ssh_node_diff_and_outputs_survive_float_olds(host: Host) -> None:
    """SshNode through the host: Check and a pure Diff on float-typed olds; the address keeps an int port."""
    state = NodeState(host="10.20.0.11", port=3306, base_dir="/srv/db1", supervision="systemd", unit="u",
                      server="mariadbd", service_user="mysql", created_base=True,
                      facts={"os_id": "debian", "kernel": "6.1", "memory_mb": 4096, "cores": 2, "systemd": True,
                             "server": "/usr/sbin/mariadbd", "service_user": "mysql"})
    news = {"__provider": serialize_provider(SshNodeProvider()), "host": "10.20.0.11", "node_name": "db1",
            "server_id": 1, "port": 3306, "plan": "x1.tiny", "tags": ["row"], "base_dir": "/srv/db1",
            "admin_user": "repman", "admin_password": "pw", "ssh_user": "root", "ssh_port": 22,
            "known_hosts": "", "strict_host_key_checking": True, "connect_timeout": 10, "service_user": "mysql",
            "install_packages": False, "check_resources": True, "keep_data": True, "provider_version": "1"}
    u = urn("SshNode", "db1")
    checked = host.check(u, {}, news)
    outs = ssh_outs(checked, state, "i1")
    olds = plain(struct(outs))
    assert isinstance(olds["state"]["port"], float)
    assert host.diff(u, "i1", olds, checked).changes == provider_pb2.DiffResponse.DIFF_NONE
    assert host.diff(u, "i1", olds, {**checked, "host": "10.20.0.12"}).replaces == ["host"]
    # What update returns from float olds (no SSH host here: the output step alone).
    assert ssh_outs(checked, NodeState(**integral(olds["state"])), "i1")["address"] == "10.20.0.11:3306"


def test_opensvc_service_through_the_host(host: Host, tmp_path: Path) -> None:
    """OpenSvcService against the recording stand-in of the agent API, credential from Configure."""
    agent = RecordingOpenSvcAgent(tmp_path, OSVC.user, OSVC.password)
    try:
        news = {"__provider": serialize_provider(OpenSvcServiceProvider()), "api_url": agent.url,
                "namespace": "databases", "cluster": "ha1", "node_name": "ha1-db1", "server_id": 1,
                "plan": "x3.small", "tags": ["gtidstrict", "row"], "image": "mariadb:10.11", "network": "backend",
                "nodes": ["n1", "n2", "n3"], "ca_file": agent.ca_file, "keep_data": True,
                "admin_user": ADMIN.user, "admin_password": ADMIN.password, "provider_version": "1"}
        u = urn("OpenSvcService", "ha1-db1")
        id_, outs = host.create(u, host.check(u, {}, news))
        assert id_ == "databases/svc/ha1-db1" and OSVC.password not in repr(outs)
        olds = plain(struct(outs))
        assert isinstance(olds["server_id"], float)
        assert host.diff(u, id_, olds, news).changes == provider_pb2.DiffResponse.DIFF_NONE
        rid, read = host.read(u, id_, outs)
        assert rid == id_ and read["observed"]["provisioned"] is True
        changed = {**news, "tags": ["gtidstrict", "row", "slow"]}
        assert host.diff(u, id_, read, changed).changes == provider_pb2.DiffResponse.DIFF_SOME
        outs = host.update(u, id_, read, changed)
        assert "long_query_time" in agent.objects["databases/cfg/ha1-db1"].keys["repman.cnf"]
        host.delete(u, id_, outs)
        assert "databases/svc/ha1-db1" not in agent.objects
        assert host.read(u, id_, outs)[0] == ""
    finally:
        agent.close()
