"""A real MariaDB node with the Spider engine in front of a real replicated cluster: its
server definition follows the primary across a switchover and a kill -9 failover."""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest

from repman.db import Credential, ServerAddress, execute, query
from repman.local.testbed import Testbed as LocalBed
from repman.routing import build_routers, notify
from repman.routing.base import RoutingError, Topology
from repman.routing.spider import SpiderRouter, default_server_name, ensure_spider
from repman.watcher.config import load_cluster
from repman.watcher.state_store import StateStore
from testkit.polling import wait_until

SPIDER_PLUGIN = Path("/usr/lib/mysql/plugin/ha_spider.so")
pytestmark = pytest.mark.skipif(not SPIDER_PLUGIN.exists(),
                                 reason="mariadb-plugin-spider is not installed (ha_spider.so absent)")
APP = Credential("app", "app-pw")       # no SUPER: read_only stops it on a demoted primary


def spider_conn(node: LocalBed) -> pymysql.connections.Connection:
    a = node.addresses[0]
    return pymysql.connect(host=a.host, port=a.port, user=node.admin.user, password=node.admin.password,
                           database="app", autocommit=True, read_timeout=20)


def served_by(node: LocalBed) -> int:
    """Which backend answers a read through the Spider table (each backend has its own marker)."""
    with spider_conn(node) as conn, conn.cursor() as cur:
        cur.execute("SELECT port FROM app.whoami")
        return int(cur.fetchone()[0])


def insert_via_spider(node: LocalBed, value: int) -> None:
    with spider_conn(node) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO app.t (id) VALUES (%s)", (value,))


@pytest.fixture
def setup(tmp_path):
    cluster = LocalBed.create(tmp_path / "cluster", count=3)
    spider = LocalBed(base=tmp_path / "spider")
    try:
        boot = cluster.bootstrap()
        primary = boot.primary
        with cluster.connect(primary) as conn:
            execute(conn, "CREATE DATABASE app")
            execute(conn, "CREATE TABLE app.t (id INT PRIMARY KEY)")
            execute(conn, "CREATE TABLE app.whoami (port INT)")
            execute(conn, f"CREATE USER '{APP.user}'@'%' IDENTIFIED BY '{APP.password}'")
            execute(conn, f"GRANT SELECT, INSERT ON app.* TO '{APP.user}'@'%'")
        for addr in cluster.addresses:       # a per-node marker, outside replication
            wait_until(lambda: _has_table(cluster, addr), what=f"app.whoami on {addr}")
            with cluster.connect(addr) as conn:
                execute(conn, "SET SESSION sql_log_bin = 0")
                execute(conn, "SET SESSION skip_replication = 1")
                execute(conn, "INSERT INTO app.whoami VALUES (%s)", (addr.port,))
        spider = LocalBed.create(tmp_path / "spider", count=1, first_server_id=100)
        cfg = load_cluster("c1", {
            "db-servers-hosts": [a.url for a in cluster.addresses],
            "db-servers-credential": f"{cluster.admin.user}:{cluster.admin.password}",
            "replication-credential": f"{cluster.replication.user}:{cluster.replication.password}",
            "monitoring-datadir": str(tmp_path / "state"),
            "mdbshardproxy": True, "mdbshardproxy-hosts": [spider.addresses[0].url],
            "mdbshardproxy-user": f"{spider.admin.user}:{spider.admin.password}",
            "mdbshardproxy-remote-user": f"{APP.user}:{APP.password}",
            "mdbshardproxy-database": "app",
            "failover-mode": "automatic", "failover-falsepositive-heartbeat": False,
        })
        routers = build_routers(cfg)
        with spider.connect(spider.addresses[0]) as conn:
            assert ensure_spider(conn) is True
            assert ensure_spider(conn) is False            # idempotent
        result = notify(routers, Topology("c1", primary, tuple(a for a in cluster.addresses if a != primary),
                                          servers=tuple(cluster.addresses)))
        assert result == {f"spider:{spider.addresses[0].url}": "ok"}
        srv = default_server_name("c1")
        with spider.connect(spider.addresses[0]) as conn:
            execute(conn, "CREATE DATABASE app")
            for table, cols in (("t", "id INT PRIMARY KEY"), ("whoami", "port INT")):
                execute(conn, f"CREATE TABLE app.{table} ({cols}) ENGINE=SPIDER "
                              f"COMMENT='wrapper \"mysql\", srv \"{srv}\", table \"{table}\"'")
        yield cluster, spider, cfg, routers, primary
    finally:
        spider.destroy()
        cluster.destroy()


def _has_table(cluster: LocalBed, addr: ServerAddress) -> bool:
    with cluster.connect(addr) as conn:
        return bool(query(conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA='app' "
                                "AND TABLE_NAME='whoami'"))


def _flush_count(spider: LocalBed) -> int:
    with spider.connect(spider.addresses[0]) as conn:
        return int(query(conn, "SELECT VARIABLE_VALUE AS v FROM information_schema.GLOBAL_STATUS "
                               "WHERE VARIABLE_NAME = 'COM_FLUSH'")[0]["v"])


def _rows(cluster: LocalBed, addr: ServerAddress) -> set[int]:
    with cluster.connect(addr) as conn:
        return {r["id"] for r in query(conn, "SELECT id FROM app.t")}


def test_spider_follows_switchover_then_failover(setup):
    from repman.watcher.failover import failover
    from repman.watcher.switchover import switchover

    cluster, spider, cfg, routers, primary = setup
    assert served_by(spider) == primary.port
    insert_via_spider(spider, 1)
    assert 1 in _rows(cluster, primary)
    # the same primary again: no needless FLUSH TABLES
    flushes = _flush_count(spider)
    notify(routers, Topology("c1", primary, (), reason="switchover"))
    assert _flush_count(spider) == flushes
    bad = SpiderRouter(spider.addresses[0], Credential(spider.admin.user, "wrong"), APP, "repman_c1")
    with pytest.raises(RoutingError, match="Spider node"):
        bad.apply(Topology("c1", primary, ()))

    said: list[str] = []
    result = switchover(cfg, StateStore(cfg.state_dir), said.append, routers=routers)
    assert result.ok, result
    new = result.new_primary
    assert new is not None and new != primary
    assert served_by(spider) == new.port                      # reads land on the new primary
    insert_via_spider(spider, 2)                              # and writes too (app user: no SUPER)
    assert 2 in _rows(cluster, new)

    cluster.kill(new)
    result = failover(cfg, StateStore(cfg.state_dir), said.append, routers=routers)
    assert result.ok, result
    third = result.new_primary
    assert third is not None and third != new
    assert served_by(spider) == third.port
    insert_via_spider(spider, 3)
    assert {1, 2, 3} <= _rows(cluster, third)
