"""The local Spider dynamic provider with real mariadbd nodes: create points the Spider
server at the primary, update re-points it, delete stops the node."""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest

from components.providers.local_proxy import LocalSpiderProvider, _spider_node
from repman.db import ServerAddress, execute
from repman.local.node import node_running
from repman.local.testbed import Testbed as LocalBed, free_ports

pytestmark = pytest.mark.skipif(not Path("/usr/lib/mysql/plugin/ha_spider.so").exists(),
                                reason="mariadb-plugin-spider is not installed (ha_spider.so absent)")


@pytest.fixture
def backends(tmp_path):
    bed = LocalBed.create(tmp_path / "db", count=2)
    try:
        for addr in bed.addresses:          # two independent servers, each saying who it is
            with bed.connect(addr) as conn:
                execute(conn, "CREATE DATABASE app")
                execute(conn, "CREATE TABLE app.whoami (port INT)")
                execute(conn, "INSERT INTO app.whoami VALUES (%s)", (addr.port,))
        yield bed
    finally:
        bed.destroy()


def read_through(props) -> int:
    conn = pymysql.connect(host=props["host"], port=int(props["port"]), user=props["admin_user"],
                           password=props["admin_password"], autocommit=True, ssl_disabled=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT port FROM app.whoami")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_spider_provider_create_repoint_delete(tmp_path, backends):
    a, b = backends.addresses
    (port,) = free_ports(1)
    props = {"base_dir": str(tmp_path / "spider"), "server_id": 500, "port": port, "host": "127.0.0.1",
             "plan": "x1.tiny", "admin_user": backends.admin.user, "admin_password": backends.admin.password,
             "remote_user": backends.admin.user, "remote_password": backends.admin.password,
             "primary": a.url, "server_name": "repman_shop", "database": "app", "provider_version": "1"}
    provider = LocalSpiderProvider()
    created = provider.create(dict(props))
    try:
        outs = created.outs
        assert "admin_password" not in outs and "remote_password" not in outs and outs["pid"] > 0
        with backends.connect(ServerAddress.parse(outs["address"])) as conn:
            execute(conn, "CREATE DATABASE app")
            execute(conn, "CREATE TABLE app.whoami (port INT) ENGINE=SPIDER "
                          "COMMENT='wrapper \"mysql\", srv \"repman_shop\", table \"whoami\"'")
        assert read_through(props) == a.port
        assert provider.diff(created.id, outs, dict(props)).changes is False
        moved = dict(props, primary=b.url)
        assert provider.diff(created.id, outs, moved).changes is True
        outs = provider.update(created.id, outs, moved).outs
        assert read_through(props) == b.port
    finally:
        provider.delete(created.id, dict(props))
    assert not node_running(_spider_node(props))
