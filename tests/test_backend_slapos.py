"""SlapOS backend against a REAL local SlapOS master (``slapos proxy start``) and real MariaDB.

- the requester side (the Pulumi program under the embedded engine, and the client)
  sends seed 003's request; the tree and parameters slapproxy records are checked in
  its own sqlite database and through the slap API;
- the instance side (what the root instance does) requests one MariaDB per computer
  as its children, and serves shared databases: a database and a REQUIRE SSL user
  created on a real cluster (``ssl`` tag), parameters published to each requester only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pymysql
import pytest
import yaml

from repman.db import Credential, connect, query
from repman.errors import ConfigError
from repman.local.testbed import DEFAULT_TAGS, Testbed, free_ports
from repman.spec import load_cluster_spec
from testkit.env import HAVE_MARIADB
from testkit.polling import wait_until

slap_module = pytest.importorskip("slapos.slap", reason="slapos.core is not installed (pip install 'repman[slapos]')")

from repman.backends.slapos import (  # noqa: E402
    SharedDatabase,
    SlapOSClient,
    SlapOSError,
    cluster_parameters,
    decode_parameters,
    settings_from_spec,
    shared_databases_from_spec,
)
from repman.backends.slapos_instance import request_database_nodes, serve_shared_databases  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SLAPOS = shutil.which("slapos") or str(Path(sys.executable).parent / "slapos")
SECRETS = {"repman:db-servers-credential": "repman:slap-admin-pw", "repman:replication-credential": "repl:slap-repl"}
COMPUTERS = ("COMP-REPMAN", "COMP-0", "COMP-1", "COMP-2", "COMP-APP")


class SlapProxy:
    """A real slapproxy on 127.0.0.1 with its sqlite database in the test's folder."""

    def __init__(self, base: Path) -> None:
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = base / "proxy.db"
        cfg = base / "slapos.cfg"
        cfg.write_text(f"[slapos]\nmaster_url = {self.url}\ncomputer_id = COMP-REPMAN\n"
                       f"[slapproxy]\nhost = 127.0.0.1\nport = {self.port}\ndatabase_uri = {self.db}\n")
        self.log = base / "slapproxy.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([SLAPOS, "proxy", "start", "--cfg", str(cfg)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        import socket

        def listening() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError("slapproxy exited")
            with socket.socket() as s:
                s.settimeout(0.3)
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        try:
            wait_until(listening, timeout=60, what="slapproxy to listen")
        except (RuntimeError, AssertionError):
            self.stop()
            raise RuntimeError(f"slapproxy did not start: {self.log.read_text()[-1000:]}") from None
        self.slap = slap_module.slap()
        self.slap.initializeConnection(self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def format_computer(self, guid: str, partitions: int, net: int) -> None:
        """Register a computer and its partitions, as ``slapos node format`` would."""
        from slapos.util import dumps

        parts = [{"reference": f"slappart{i}", "tap": {"name": f"slaptap{i}"},
                  "address_list": [{"addr": f"10.{net}.0.{10 + i}", "netmask": "255.255.255.0"},
                                   {"addr": f"fd46:{net}::{10 + i:x}", "netmask": "ffff:ffff:ffff:ffff::"}]}
                 for i in range(partitions)]
        self.slap.registerComputer(guid).updateConfiguration(dumps({
            "reference": guid, "address": f"10.{net}.0.1", "netmask": "255.255.255.0", "partition_list": parts}))

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Rows of slapproxy's own table (its name carries the schema version)."""
        con = sqlite3.connect(self.db)
        con.row_factory = sqlite3.Row
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            real = max((n for n in names if n.rstrip("0123456789") == table), key=len)
            return [dict(r) for r in con.execute(f"SELECT * FROM {real}")]
        finally:
            con.close()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[SlapProxy]:
    if not Path(SLAPOS).exists():
        pytest.skip("the slapos command (slapos.core) is not installed")
    made = SlapProxy(tmp_path)
    try:
        for net, guid in enumerate(COMPUTERS, start=1):
            made.format_computer(guid, partitions=3, net=net)
        yield made
    finally:
        made.stop()


def stack(**overrides: Any) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.slapos.yaml").read_text())["config"]
    config.update(SECRETS)
    config.update({f"repman:{k}": v for k, v in overrides.items()})
    return config


def proxy_stack(proxy: SlapProxy, **overrides: Any) -> dict[str, Any]:
    return stack(**{"slapos-master-url": proxy.url, "slapos-key-file": "", "slapos-cert-file": "",
                    "slapos-repman-computer-guid": "COMP-REPMAN",
                    "slapos-computer-guids": ["COMP-0", "COMP-1", "COMP-2"], **overrides})


def test_stack_file_is_valid_and_carries_seed_003_parameters():
    spec = load_cluster_spec(stack(), project_dir=ROOT)
    settings = settings_from_spec(spec)
    assert settings.key_file == os.path.expanduser("~/.slapos/key.pem")
    cluster = cluster_parameters(spec, settings)["repman-cluster-dict"]["cluster1"]
    assert cluster["database-amount"] == 3
    assert [cluster[f"-sla-{i}-computer_guid"] for i in range(3)] == ["COMP-2001", "COMP-2002", "COMP-2003"]
    assert cluster["tags"][-1] == "ssl" and cluster["proxy-tags"] == ["masterslave", "noreadwritesplit", "ssl"]
    assert cluster["failover-mode"] == "manual" and cluster["failover-falsepositive-heartbeat-timeout"] == 3
    assert cluster["switchover-wait-kill"] == 5000 and cluster["autorejoin"] is True
    assert [(d.name, d.user) for d in shared_databases_from_spec(spec)] == [("wordpress", "wordpress"),
                                                                            ("shop", "shopkeeper")]


@pytest.mark.parametrize("overrides, message", [
    ({"slapos-master-url": ""}, "repman:slapos-master-url: is required for prov-orchestrator slapos"),
    ({"slapos-master-url": "slap.example"}, "repman:slapos-master-url: 'slap.example' must be an http(s) URL"),
    ({"slapos-computer-guids": ["COMP-1"]},
     "repman:slapos-computer-guids: 1 computers listed but the cluster has 3 databases"),
    ({"slapos-databases": ["bad-name"]}, "repman:slapos-databases: database 'bad-name' in 'bad-name'"),
    ({"slapos-cert-file": ""}, "repman:slapos-key-file: slapos-key-file and slapos-cert-file go together"),
])
def test_bad_slapos_settings_are_one_line_errors(overrides, message):
    spec = load_cluster_spec(stack(**overrides), project_dir=ROOT)
    with pytest.raises(ConfigError) as info:
        settings_from_spec(spec)
        shared_databases_from_spec(spec)
    assert str(info.value).startswith(message)


def test_cluster_request_builds_the_instance_tree_in_slapproxy(proxy: SlapProxy):
    spec = load_cluster_spec(proxy_stack(proxy, **{"failover-mode": "automatic", "failover-limit": 3}))
    settings = settings_from_spec(spec)
    client = SlapOSClient(settings)
    root = client.request_cluster(cluster_parameters(spec, settings), spec.name)
    assert root.computer_guid == "COMP-REPMAN" and root.instance_guid == f"COMP-REPMAN-{root.partition_id}"
    again = client.request_cluster(cluster_parameters(spec, settings), spec.name)
    assert again.partition_id == root.partition_id    # requests are idempotent by title

    # The root instance (its profile) reads its parameters and requests its MariaDB children.
    partition = proxy.slap.registerComputerPartition(root.computer_guid, root.partition_id)
    sent = decode_parameters(partition.getInstanceParameterDict())["repman-cluster-dict"]["cluster1"]
    assert sent["failover-mode"] == "automatic" and sent["failover-limit"] == 3
    assert sent["-sla-2-computer_guid"] == "COMP-2" and sent["database-amount"] == 3
    children = request_database_nodes(partition, settings.software_release)["cluster1"]
    assert [c.getInstanceGuid().split("-slappart")[0] for c in children] == ["COMP-0", "COMP-1", "COMP-2"]

    tree = {r["partition_reference"]: r for r in proxy.rows("partition") if r["slap_state"] == "busy"}
    assert set(tree) == {"repman-cluster1", "cluster1-mariadb-0", "cluster1-mariadb-1", "cluster1-mariadb-2"}
    assert tree["repman-cluster1"]["requested_by"] == "" and tree["repman-cluster1"]["software_type"] == "default"
    for i in range(3):
        child = tree[f"cluster1-mariadb-{i}"]
        assert child["requested_by"] == "repman-cluster1"       # children of the root instance
        assert child["computer_reference"] == f"COMP-{i}"       # -sla-i-computer_guid honoured
        assert child["software_type"] == "mariadb"
        assert child["software_release"] == settings.software_release
        params = json.loads(_xml_param(child["xml"]))
        assert params["server-id"] == i + 1 and params["tags"] == list(spec.db_tags)
    root_params = json.loads(_xml_param(tree["repman-cluster1"]["xml"]))
    assert root_params == json.loads(json.dumps(cluster_parameters(spec, settings)))
    assert "slap-admin-pw" not in json.dumps(proxy.rows("partition"))   # no secret sent to the master


def _xml_param(xml: str) -> str:
    from slapos.util import xml2dict

    return xml2dict(xml)["_"]


@pytest.fixture
def ssl_cluster(tmp_path: Path) -> Iterator[Testbed]:
    if not HAVE_MARIADB:
        pytest.skip("mariadbd not installed")
    bed = Testbed(base=tmp_path / "bed")
    try:
        bed = Testbed.create(tmp_path / "bed", count=2, tags=(*DEFAULT_TAGS, "ssl"))
        bed.bootstrap()
        yield bed
    finally:
        bed.destroy()


def test_shared_databases_are_created_for_real_and_visible_only_to_their_requester(
    proxy: SlapProxy, ssl_cluster: Testbed,
):
    spec = load_cluster_spec(proxy_stack(proxy, **{"slapos-databases": ["wordpress"]}))
    settings = settings_from_spec(spec)
    client = SlapOSClient(settings)
    root = client.request_cluster(cluster_parameters(spec, settings), spec.name)
    wordpress = shared_databases_from_spec(spec)[0]
    client.request_database(wordpress, spec.name, root.instance_guid)
    # A second requester: another instance (an application on its own computer) asks for its database.
    app = proxy.slap.registerOpenOrder().request(settings.software_release, "shop-app", software_type="default",
                                                 filter_kw={"computer_guid": "COMP-APP"})
    app_partition = proxy.slap.registerComputerPartition("COMP-APP", app.getId())
    shop = SharedDatabase("shop", "shopkeeper")
    app_partition.request(settings.software_release, "default", shop.title, shared=True,
                          partition_parameter_kw=shop.parameters(spec.name),
                          filter_kw={"computer_guid": "COMP-REPMAN", "instance_guid": root.instance_guid})

    # The root instance serves both on the real cluster's primary.
    primary = ssl_cluster.addresses[0]
    partition = proxy.slap.registerComputerPartition(root.computer_guid, root.partition_id)
    served = serve_shared_databases(partition, primary, ssl_cluster.admin, secret="cluster-secret",
                                    public_hosts={"ipv4": primary.host, "ipv6": "fd46:1::a"})
    assert sorted((s.slave_reference, s.database, s.user, s.error) for s in served) == [
        ("_db-wordpress", "wordpress", "wordpress", ""), ("shop-app_db-shop", "shop", "shopkeeper", "")]

    # Each requester reads its own parameters; the other tenant's never show up.
    mine = client.request_database(wordpress, spec.name, root.instance_guid).connection
    theirs = app_partition.request(settings.software_release, "default", shop.title, shared=True,
                                   partition_parameter_kw=shop.parameters(spec.name),
                                   filter_kw={"computer_guid": "COMP-REPMAN",
                                              "instance_guid": root.instance_guid}).getConnectionParameterDict()
    assert mine["database"] == "wordpress" and mine["user"] == "wordpress" and mine["ssl"] == "required"
    assert theirs["database"] == "shop" and theirs["user"] == "shopkeeper"
    assert theirs["password"] not in json.dumps(mine) and mine["password"] not in json.dumps(theirs)
    assert mine["url-ipv6"] == f"mysql://wordpress:{mine['password']}@[fd46:1::a]:{primary.port}/wordpress?ssl-mode=REQUIRED"
    assert "shop" not in json.dumps(root.connection)

    # The users are real: TLS only, each sees its own database and nothing else.
    ca = str(Path(ssl_cluster.node(primary).base_dir) / "ssl" / "ca.pem")
    for conn_params, own in ((mine, "wordpress"), (theirs, "shop")):
        user = Credential(conn_params["user"], conn_params["password"])
        with pymysql.connect(host=primary.host, port=primary.port, user=user.user, password=user.password,
                             ssl={"ca": ca}, connect_timeout=5) as conn:
            with conn.cursor() as cur:
                cur.execute("SHOW STATUS LIKE 'Ssl_version'")
                assert cur.fetchone()[1].startswith("TLS")
                cur.execute("SHOW DATABASES")
                assert sorted(r[0] for r in cur.fetchall()) == ["information_schema", own]
                cur.execute(f"CREATE TABLE `{own}`.t (id INT PRIMARY KEY)")
        with pytest.raises(pymysql.err.OperationalError) as info:
            pymysql.connect(host=primary.host, port=primary.port, user=user.user, password=user.password,
                            connect_timeout=5, ssl_disabled=True)
        assert info.value.args[0] == 1045   # access denied without TLS
    # Written on the primary, replicated like any write.
    replica = ssl_cluster.addresses[1]
    with connect(primary, ssl_cluster.admin) as conn:
        target = query(conn, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
    with connect(replica, ssl_cluster.admin, read_timeout=60) as conn:
        assert query(conn, "SELECT MASTER_GTID_WAIT(%s, 30) AS w", (target,))[0]["w"] == 0
        assert query(conn, "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema IN "
                           "('wordpress', 'shop')")[0]["n"] == 2
    # Serving again changes nothing (same passwords, same grants).
    again = serve_shared_databases(partition, primary, ssl_cluster.admin, secret="cluster-secret")
    assert all(not s.changes for s in again)


def test_bad_shared_request_gets_an_error_parameter_not_a_database(proxy: SlapProxy, ssl_cluster: Testbed):
    spec = load_cluster_spec(proxy_stack(proxy))
    settings = settings_from_spec(spec)
    client = SlapOSClient(settings)
    root = client.request_cluster(cluster_parameters(spec, settings), spec.name)
    client.request_database(SharedDatabase("mysql", "intruder"), spec.name, root.instance_guid)
    partition = proxy.slap.registerComputerPartition(root.computer_guid, root.partition_id)
    served = serve_shared_databases(partition, ssl_cluster.addresses[0], ssl_cluster.admin, secret="s")
    assert served[0].error == "name: database 'mysql' is reserved"
    answer = client.request_database(SharedDatabase("mysql", "intruder"), spec.name, root.instance_guid)
    assert answer.connection == {"error": "name: database 'mysql' is reserved"}
    with connect(ssl_cluster.addresses[0], ssl_cluster.admin) as conn:
        assert not query(conn, "SELECT 1 FROM mysql.user WHERE User = 'intruder'")


def test_unreachable_master_is_a_clear_error(tmp_path: Path):
    port = free_ports(1)[0]
    spec = load_cluster_spec(stack(**{"slapos-master-url": f"http://127.0.0.1:{port}", "slapos-key-file": "",
                                      "slapos-cert-file": ""}))
    settings = settings_from_spec(spec)
    with pytest.raises(SlapOSError) as info:
        SlapOSClient(settings, timeout=5).request_cluster(cluster_parameters(spec, settings), spec.name)
    assert str(info.value).startswith(f"slapos master http://127.0.0.1:{port}: request of repman-cluster1:")


def test_slapos_stack_up_and_down_through_the_program(proxy: SlapProxy, tmp_path: Path):
    """The program of stacks/Pulumi.slapos.yaml under the embedded engine, against slapproxy."""
    overrides = {k: v for k, v in proxy_stack(proxy).items() if k.startswith("repman:slapos")}
    overrides["repman:prov-state-dir"] = str(tmp_path / "state")
    overrides["repman:prov-protect"] = "false"          # down at the end destroys the instance tree
    overrides.update(SECRETS)
    up = _engine("up", overrides)
    assert up["changes"]["created"] == 3    # the root request and two shared databases
    assert up["outputs"]["backend"]["root_instance"] == "repman-cluster1"
    busy = {r["partition_reference"]: r for r in proxy.rows("partition") if r["slap_state"] == "busy"}
    assert busy["repman-cluster1"]["computer_reference"] == "COMP-REPMAN"
    assert busy["repman-cluster1"]["requested_state"] == "started"
    root = busy["repman-cluster1"]
    hosted = json.loads(_slave_list(root["slave_instance_list"]))
    assert sorted(s["slave_reference"] for s in hosted) == ["_db-shop", "_db-wordpress"]
    assert json.loads(hosted[0]["_"])["repman-cluster"] == "cluster1"
    again = _engine("up", overrides)
    assert again["changes"]["created"] == 0 and again["changes"]["updated"] == 0
    _engine("down", overrides)
    root = next(r for r in proxy.rows("partition") if r["partition_reference"] == "repman-cluster1")
    assert root["requested_state"] == "destroyed"
    assert json.loads(_slave_list(root["slave_instance_list"])) == []


def _slave_list(xml: str | None) -> str:
    from slapos.util import loads

    return json.dumps(loads(xml.encode()) if xml else [])


def _engine(command: str, overrides: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "embedded_engine", command, "--yes", "--stack", "slapos", "--json"]
    for key, value in overrides.items():
        cmd += ["-c", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)



def test_slapos_request_provider_through_the_sdk_provider_host(proxy: SlapProxy):
    """SlapOSRequest's check/diff/create/read/update/delete over gRPC, as the Pulumi CLI drives it."""
    from pulumi.dynamic.dynamic import serialize_provider
    from pulumi.runtime.proto import provider_pb2

    from components.providers.slapos_request import PROVIDER_VERSION, SlapOSRequestProvider
    from testkit.provider_host import Host, plain, struct, urn

    host = Host(ROOT)
    try:
        spec = load_cluster_spec(proxy_stack(proxy))
        settings = settings_from_spec(spec)
        news = {"__provider": serialize_provider(SlapOSRequestProvider()), "master_url": proxy.url,
                "software_release": settings.software_release, "software_type": "default",
                "computer_guid": "COMP-REPMAN", "title": "repman-cluster1", "cluster": "cluster1",
                "parameters": json.dumps(cluster_parameters(spec, settings)), "shared": False, "database": {},
                "key_file": "", "cert_file": "", "provider_version": PROVIDER_VERSION}
        u = urn("SlapOSRequest", "cluster1-root")
        id_, outs = host.create(u, host.check(u, {}, news))
        assert id_ == f"{settings.software_release}#repman-cluster1" and outs["allocated_computer"] == "COMP-REPMAN"
        olds = plain(struct(outs))
        assert host.diff(u, id_, olds, news).changes == provider_pb2.DiffResponse.DIFF_NONE
        rid, read = host.read(u, id_, olds)
        assert rid == id_ and read["partition"] == outs["partition"]     # same allocation, nothing re-created
        busy = [r for r in proxy.rows("partition") if r["slap_state"] == "busy"]
        assert [r["partition_reference"] for r in busy] == ["repman-cluster1"]
        changed = {**news, "parameters": json.dumps({**cluster_parameters(spec, settings), "failover-limit": 9})}
        assert host.diff(u, id_, read, changed).changes == provider_pb2.DiffResponse.DIFF_SOME
        outs = host.update(u, id_, read, changed)
        root = [r for r in proxy.rows("partition") if r["partition_reference"] == "repman-cluster1"][0]
        assert json.loads(_xml_param(root["xml"]))["failover-limit"] == 9
        host.delete(u, id_, outs)
        root = [r for r in proxy.rows("partition") if r["partition_reference"] == "repman-cluster1"][0]
        assert root["requested_state"] == "destroyed"
    finally:
        host.close()
