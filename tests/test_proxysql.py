"""ProxySQL: config parsed by the real libconfig; admin statements checked against a
recording stand-in of its MySQL-protocol admin interface (ProxySQL cannot run here).
The users copied into ProxySQL are read from a real mariadbd."""

from __future__ import annotations

import pytest

from repman.db import Credential, ServerAddress, execute, query
from repman.errors import ConfigError
from repman.local.testbed import Testbed as LocalBed, free_ports
from repman.routing import build_routers, failed, notify
from repman.routing.base import RoutingError, Topology
from repman.routing.proxysql import ProxySQLRouter
from repman.routing.proxysql_config import ProxySQLConfig, render_proxysql_config
from repman.watcher.cluster_config import ClusterConfig
from testkit.standins.libconfig_check import LibConfig, load_libconfig
from testkit.standins.mysql_protocol import Error, RecordingMySQLServer, table_responder

A, B, C = (ServerAddress("10.0.0.1", 3306), ServerAddress("10.0.0.2", 3306), ServerAddress("10.0.0.3", 3306))


@pytest.fixture
def standin():
    server = RecordingMySQLServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def primary_node(tmp_path_factory):
    bed = LocalBed.create(tmp_path_factory.mktemp("psqlnode"), count=1)
    with bed.connect(bed.addresses[0]) as conn:
        execute(conn, "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'")
        execute(conn, "CREATE USER 'app'@'localhost' IDENTIFIED BY 'app-pw'")
        execute(conn, "CREATE USER 'o''neil'@'%' IDENTIFIED BY 'x'")
        execute(conn, "CREATE USER 'sock'@'localhost' IDENTIFIED VIA unix_socket")
        execute(conn, "CREATE ROLE reporting")
        hashes = {r["u"]: r["h"] for r in query(conn, "SELECT 'app' AS u, PASSWORD('app-pw') AS h "
                                                      "UNION SELECT 'o''neil', PASSWORD('x')")}
    yield bed, hashes
    bed.destroy()


def test_config_parses_with_libconfig():
    lib = load_libconfig()
    if lib is None:
        pytest.skip("libconfig9 (the C library ProxySQL parses its config with) is not installed")
    conf = ProxySQLConfig("c1", (A, B, C), A, Credential("admin", 'se"cret'), Credential("monitor", "m"))
    parsed = LibConfig(lib, render_proxysql_config(conf))
    assert parsed.lookup_string("admin_variables.admin_credentials") == 'admin:se"cret'
    assert parsed.lookup_string("admin_variables.mysql_ifaces") == "0.0.0.0:6032"
    assert parsed.lookup_string("mysql_variables.interfaces") == "0.0.0.0:6033"
    assert parsed.lookup_int("mysql_servers.[0].hostgroup") == 0            # primary: writer
    assert parsed.lookup_string("mysql_servers.[0].address") == "10.0.0.1"
    assert [parsed.lookup_int(f"mysql_servers.[{i}].hostgroup") for i in (1, 2)] == [1, 1]
    assert parsed.lookup_int("mysql_replication_hostgroups.[0].reader_hostgroup") == 1
    assert parsed.lookup_string("mysql_query_rules.[1].match_digest") == "^SELECT "
    parsed.close()
    nosplit = render_proxysql_config(ProxySQLConfig("c1", (A,), A, Credential("a", "b"), Credential("m", "n"),
                                                    tags=("masterslave", "noreadwritesplit", "ssl")))
    parsed = LibConfig(lib, nosplit)
    with pytest.raises(KeyError):
        parsed.lookup_int("mysql_query_rules.[0].rule_id")
    assert parsed.lookup_int("mysql_servers.[0].use_ssl") == 1
    parsed.close()


def test_config_rejects_bad_input():
    with pytest.raises(ConfigError, match="proxysql-reader-hostgroup"):
        render_proxysql_config(ProxySQLConfig("c1", (A,), A, Credential("a", "b"), Credential("m", "n"),
                                              writer_hostgroup=1, reader_hostgroup=1))
    with pytest.raises(ConfigError, match="proxysql-port"):
        render_proxysql_config(ProxySQLConfig("c1", (A,), A, Credential("a", "b"), Credential("m", "n"),
                                              admin_port=6000, client_port=6000))


def test_failover_rewrites_hostgroups_exactly(standin):
    router = ProxySQLRouter(ServerAddress("127.0.0.1", standin.port), Credential("radmin", "rpass"), "c1",
                            copy_grants=False)
    router.apply(Topology("c1", B, (C,), (A,), old_primary=A, reason="failover", servers=(A, B, C)))
    assert standin.logins == ["radmin"]
    assert standin.sql() == [
        "SET NAMES utf8mb4",
        "DELETE FROM mysql_replication_hostgroups WHERE writer_hostgroup=0",
        "INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) "
        "VALUES (0, 1, 'repman c1')",
        "DELETE FROM mysql_servers WHERE hostgroup_id IN (0, 1)",
        "INSERT INTO mysql_servers (hostgroup_id, hostname, port, status, comment) "
        "VALUES (0, '10.0.0.2', 3306, 'ONLINE', 'repman c1')",
        "INSERT INTO mysql_servers (hostgroup_id, hostname, port, status, comment) "
        "VALUES (1, '10.0.0.3', 3306, 'ONLINE', 'repman c1')",
        "INSERT INTO mysql_servers (hostgroup_id, hostname, port, status, comment) "
        "VALUES (1, '10.0.0.1', 3306, 'OFFLINE_SOFT', 'repman c1')",
        "LOAD MYSQL SERVERS TO RUNTIME",
        "SAVE MYSQL SERVERS TO DISK",
    ]


def test_custom_hostgroups_and_no_disk_save(standin):
    router = ProxySQLRouter(ServerAddress("127.0.0.1", standin.port), Credential("a", "b"), "c1",
                            writer_hostgroup=10, reader_hostgroup=20, copy_grants=False, save_to_disk=False)
    router.apply(Topology("c1", None, (B, C), (A,), reason="failover"))
    sql = standin.sql()
    assert "DELETE FROM mysql_servers WHERE hostgroup_id IN (10, 20)" in sql
    assert not any("hostgroup_id, hostname" in s and "VALUES (10," in s for s in sql)   # no primary: no writer
    assert sql[-1] == "LOAD MYSQL SERVERS TO RUNTIME"


def test_users_are_copied_from_the_real_primary(standin, primary_node):
    bed, hashes = primary_node
    primary = bed.addresses[0]
    router = ProxySQLRouter(ServerAddress("127.0.0.1", standin.port), Credential("a", "b"), "c1",
                            db_credential=bed.admin, ignored_users=(bed.admin.user,))
    router.apply(Topology("c1", primary, (), (), reason="switchover", servers=(primary,)))
    sql = standin.sql()
    users = sql[sql.index("SAVE MYSQL SERVERS TO DISK") + 1:]
    oneil_hash = hashes["o'neil"]
    assert users == [
        "REPLACE INTO mysql_users (username, password, default_hostgroup, active) "
        f"VALUES ('app', '{hashes['app']}', 0, 1)",
        "REPLACE INTO mysql_users (username, password, default_hostgroup, active) "
        f"VALUES ('o''neil', '{oneil_hash}', 0, 1)",
        "LOAD MYSQL USERS TO RUNTIME",
        "SAVE MYSQL USERS TO DISK",
    ]


def test_admin_error_is_a_routing_failure_never_an_exception(standin):
    standin.responder = table_responder([(r"^LOAD MYSQL SERVERS", Error(1045, "ProxySQL Admin Error: locked"))])
    cfg = ClusterConfig("c1", {"proxysql": True, "proxysql-servers": [f"127.0.0.1:{standin.port}"],
                               "proxysql-copy-grants": False})
    routers = build_routers(cfg)
    assert [r.name for r in routers] == [f"proxysql:127.0.0.1:{standin.port}"]
    result = notify(routers, Topology("c1", B, (C,), (A,), reason="failover"))
    assert "LOAD MYSQL SERVERS TO RUNTIME" in failed(result)[routers[0].name]
    assert "SAVE MYSQL SERVERS TO DISK" not in standin.sql()
    standin.responder = table_responder([])
    assert notify(routers, Topology("c1", B, (C,), (A,), reason="monitor")) == {routers[0].name: "ok"}
    assert standin.sql()[-1] == "SAVE MYSQL SERVERS TO DISK"


def test_unreachable_admin_is_reported():
    (port,) = free_ports(1)
    router = ProxySQLRouter(ServerAddress("127.0.0.1", port), Credential("a", "b"), "c1", copy_grants=False,
                            timeout=0.5)
    with pytest.raises(RoutingError, match="unreachable"):
        router.apply(Topology("c1", A, (B,), ()))


def test_endpoint_parsing_uses_the_admin_port_key():
    cfg = ClusterConfig("c1", {"proxysql": True, "proxysql-servers": ["px1", "px2:7032"],
                               "proxysql-admin-port": 6040})
    assert [r.name for r in build_routers(cfg)] == ["proxysql:px1:6040", "proxysql:px2:7032"]
