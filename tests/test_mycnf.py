"""my.cnf from tags: rendering rules, and every tag accepted by a real mariadbd."""

from __future__ import annotations

from pathlib import Path

import pytest

from repman.db import ServerAddress, session, variable
from repman.errors import ConfigError
from repman.local.node import LocalNodeSpec, create_node, delete_node
from repman.local.testbed import ADMIN
from repman.mycnf import NodeContext, known_tags, render_mycnf, validate_tags
from repman.plans import get_plan
from tests.conftest import free_port_block, needs_mariadb

REQUIRED_TAGS = {
    "gtidstrict", "row", "semisync", "innodb", "noquerycache", "readonly", "slow", "pfs", "compressbinlog",
    "utctime", "readcommitted", "bm4ci", "ssl", "nodurable", "smallredolog",
}


def ctx(**over) -> NodeContext:
    base = dict(server_id=4, port=3399, datadir="/d/data", socket="/d/run/s.sock", run_dir="/d/run",
                tmp_dir="/d/tmp", ssl_dir="/d/ssl")
    base.update(over)
    return NodeContext(**base)


def test_issue_tags_exist():
    assert REQUIRED_TAGS <= set(known_tags())


def test_base_config_carries_gtid_replication_basics():
    text = render_mycnf([], get_plan("x3.tiny"), ctx())
    for line in ("server_id                 = 4", "port                      = 3399", "log_slave_updates         = ON",
                 "log_bin                   = /d/data/binlog"):
        assert line in text


def test_innodb_buffer_pool_follows_plan_memory():
    small = render_mycnf(["innodb"], get_plan("x1.small"), ctx())
    large = render_mycnf(["innodb"], get_plan("x3.large"), ctx())
    assert "innodb_buffer_pool_size        = 2457M" in small  # 60% of 4096 MB
    assert "innodb_buffer_pool_size        = 39321M" in large


def test_unknown_and_conflicting_tags_are_errors():
    with pytest.raises(ConfigError, match=r"^prov-db-tags: unknown tag 'turbo' \(known: "):
        validate_tags(["row", "turbo"])
    with pytest.raises(ConfigError, match="contradict"):
        render_mycnf(["durable", "nodurable"], get_plan("x1.tiny"), ctx())
    with pytest.raises(ConfigError, match="certificate directory"):
        render_mycnf(["ssl"], get_plan("x1.tiny"), ctx(ssl_dir=""))


def test_duplicates_are_dropped_in_order():
    assert validate_tags(["row", "slow", "row"]) == ["row", "slow"]


# Every tag started at least once: all compatible tags together, then the other side of each conflict.
SERVER_TAG_SETS = [
    sorted(set(known_tags()) - {"nodurable"}),
    ["nodurable", "gtidstrict", "row"],
]


@needs_mariadb
@pytest.mark.parametrize("tags", SERVER_TAG_SETS, ids=["all-but-nodurable", "nodurable"])
def test_real_mariadbd_accepts_the_tags(tmp_path: Path, tags: list[str]):
    spec = LocalNodeSpec(base_dir=str(tmp_path / "n"), server_id=11, port=free_port_block(1), plan="x1.tiny",
                         tags=tags, admin_user=ADMIN.user, admin_password=ADMIN.password)
    try:
        create_node(spec)
        with session(ServerAddress(spec.host, spec.port), ADMIN) as conn:
            values = {name: variable(conn, name) for name in (
                "gtid_strict_mode", "binlog_format", "innodb_flush_log_at_trx_commit", "sync_binlog",
                "performance_schema", "query_cache_type", "read_only", "slow_query_log", "log_bin_compress",
                "time_zone", "tx_isolation", "character_set_server", "have_ssl", "innodb_log_file_size",
                "thread_handling", "rpl_semi_sync_slave_enabled", "innodb_buffer_pool_size",
            )}
    finally:
        delete_node(spec, keep_data=False)
    assert values["gtid_strict_mode"] == "1" and values["binlog_format"] == "ROW"
    if "nodurable" in tags:
        assert values["innodb_flush_log_at_trx_commit"] == "2" and values["sync_binlog"] == "0"
        return
    expected = {
        "innodb_flush_log_at_trx_commit": "1", "sync_binlog": "1", "performance_schema": "1",
        "query_cache_type": "OFF", "read_only": "1", "slow_query_log": "1", "log_bin_compress": "1",
        "time_zone": "+00:00", "tx_isolation": "READ-COMMITTED", "character_set_server": "utf8mb4",
        "have_ssl": "YES", "innodb_log_file_size": str(48 * 1024 * 1024), "thread_handling": "pool-of-threads",
        "rpl_semi_sync_slave_enabled": "1",
    }
    assert {k: values[k] for k in expected} == expected
    assert int(values["innodb_buffer_pool_size"]) >= 600 * 1024 * 1024  # 60% of x1.tiny's 1024 MB
