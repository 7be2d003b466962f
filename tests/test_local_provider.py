"""The local backend's dynamic provider against real mariadbd: create, diff, update, delete."""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest

from components.providers.local_node import LocalNodeProvider, node_spec
from repman.db import Credential, ServerAddress, connect, variable
from repman.local.mariadb import pid_alive, read_pid
from repman.local.ports import free_port_block
from testkit.env import needs_mariadb

pytestmark = needs_mariadb
PASSWORD = "node-admin-pw"


def props(base: Path, port: int, **over) -> dict:
    p = {
        "base_dir": str(base), "server_id": 7, "port": port, "host": "127.0.0.1", "plan": "x1.tiny",
        "tags": ["gtidstrict", "row", "readonly", "smallredolog", "nodurable"],
        "admin_user": "repman", "admin_password": PASSWORD, "max_connections": 200, "keep_data": True,
        "provider_version": "1",
    }
    p.update(over)
    return p


@pytest.fixture
def node(tmp_path):
    """Create a node through the provider; always stopped at the end."""
    provider = LocalNodeProvider()
    port = free_port_block(1)
    news = props(tmp_path / "node", port)
    created = provider.create(dict(news))
    state = {"id": created.id, "outs": created.outs, "news": news}
    yield provider, state
    provider.delete(state["id"], state["outs"])
    spec = node_spec(state["outs"])
    pid = read_pid(spec.paths)
    assert pid is None


def admin(outs: dict, password: str = PASSWORD):
    return connect(ServerAddress(outs["host"], int(outs["port"])), Credential("repman", password))


def test_create_runs_a_detached_server_and_keeps_no_password(node):
    provider, st = node
    outs = st["outs"]
    assert pid_alive(int(outs["pid"]))
    assert outs["address"] == f"127.0.0.1:{st['news']['port']}"
    assert "admin_password" not in outs
    assert PASSWORD not in repr(outs)
    conn = admin(outs)
    try:
        assert variable(conn, "server_id") == "7"
        assert variable(conn, "gtid_strict_mode") == "1"
        assert variable(conn, "read_only") == "1"
    finally:
        conn.close()


def test_no_change_is_no_change(node):
    provider, st = node
    diff = provider.diff(st["id"], st["outs"], dict(st["news"]))
    assert diff.changes is False and diff.replaces == []


def test_datadir_or_server_id_change_replaces(node, tmp_path):
    provider, st = node
    moved = provider.diff(st["id"], st["outs"], props(tmp_path / "elsewhere", st["news"]["port"]))
    assert moved.changes and moved.replaces == ["base_dir"] and moved.delete_before_replace
    renum = provider.diff(st["id"], st["outs"], {**st["news"], "server_id": 8})
    assert renum.replaces == ["server_id"]


def test_dynamic_change_is_applied_live(node):
    provider, st = node
    news = {**st["news"], "tags": st["news"]["tags"] + ["slow", "readcommitted"]}
    diff = provider.diff(st["id"], st["outs"], news)
    assert diff.changes and not diff.replaces
    pid_before = read_pid(node_spec(st["outs"]).paths)
    conn = admin(st["outs"])
    try:
        conn.cursor().execute("SET GLOBAL read_only = OFF")
    finally:
        conn.close()
    news["tags"].remove("readonly")
    news["tags"].append("readonly")  # order only: still no restart, read_only left alone
    result = provider.update(st["id"], st["outs"], dict(news))
    st["outs"] = result.outs
    assert read_pid(node_spec(result.outs).paths) == pid_before, "a dynamic change must not restart"
    conn = admin(result.outs)
    try:
        assert variable(conn, "slow_query_log") == "1"
        assert variable(conn, "tx_isolation") == "READ-COMMITTED"
        assert variable(conn, "read_only") == "0"
    finally:
        conn.close()
    assert "slow_query_log" in Path(result.outs["cnf_path"]).read_text()
    assert provider.diff(st["id"], result.outs, dict(news)).changes is False


def test_static_change_restarts_cleanly_keeping_the_role(node):
    provider, st = node
    conn = admin(st["outs"])
    try:  # as bootstrap does for a primary: the readonly tag must not close it again
        conn.cursor().execute("SET GLOBAL read_only = OFF")
    finally:
        conn.close()
    news = {**st["news"], "tags": st["news"]["tags"] + ["pfs"]}
    pid_before = read_pid(node_spec(st["outs"]).paths)
    result = provider.update(st["id"], st["outs"], dict(news))
    st["outs"] = result.outs
    pid_after = read_pid(node_spec(result.outs).paths)
    assert pid_after and pid_after != pid_before and not pid_alive(pid_before)
    conn = admin(result.outs)
    try:
        assert variable(conn, "performance_schema") == "1"
        assert variable(conn, "read_only") == "0"
    finally:
        conn.close()
    assert "shutdown complete" in Path(result.outs["error_log"]).read_text().lower()


def test_password_change_is_an_update(node):
    provider, st = node
    news = {**st["news"], "admin_password": "rotated-pw"}
    assert provider.diff(st["id"], st["outs"], news).changes
    result = provider.update(st["id"], st["outs"], dict(news))
    st["outs"], st["news"] = result.outs, news
    admin(result.outs, "rotated-pw").close()
    with pytest.raises(pymysql.MySQLError):
        admin(result.outs, PASSWORD)
    assert provider.diff(st["id"], result.outs, dict(news)).changes is False


def test_dead_server_is_restarted_by_the_next_update(node):
    provider, st = node
    spec = node_spec(st["outs"])
    from repman.local.node import crash_node

    crash_node(spec)
    # diff is a pure comparison with state: the crash is seen once read() (refresh) recorded it.
    assert provider.diff(st["id"], st["outs"], dict(st["news"])).changes is False
    read = provider.read(st["id"], st["outs"])
    assert read.outs["observed"]["running"] is False and read.outs["pid"] == 0
    diff = provider.diff(st["id"], read.outs, dict(st["news"]))
    assert diff.changes and not diff.replaces
    result = provider.update(st["id"], read.outs, dict(st["news"]))
    st["outs"] = result.outs
    admin(result.outs).close()


def test_delete_keeps_or_removes_the_datadir(tmp_path):
    provider = LocalNodeProvider()
    for keep in (True, False):
        base = tmp_path / f"keep-{keep}"
        created = provider.create(props(base, free_port_block(1), keep_data=keep))
        try:
            assert (base / "data" / "mysql").is_dir()
        finally:
            provider.delete(created.id, created.outs)
        assert read_pid(node_spec(created.outs).paths) is None
        assert (base / "data" / "mysql").is_dir() is keep


def test_failed_create_leaves_no_process(tmp_path):
    provider = LocalNodeProvider()
    port = free_port_block(1)
    blocker = LocalNodeProvider().create(props(tmp_path / "first", port))
    try:  # same port: the second mariadbd cannot bind and create must fail cleanly
        with pytest.raises(Exception):  # noqa: B017 (any error will do: what matters is the clean-up)
            provider.create(props(tmp_path / "second", port, server_id=8))
        assert read_pid(node_spec(props(tmp_path / "second", port)).paths) is None
    finally:
        provider.delete(blocker.id, blocker.outs)
