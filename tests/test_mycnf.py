"""my.cnf from tags: rendering rules, and every tag accepted by a real mariadbd."""

from __future__ import annotations

from pathlib import Path

import pytest

from repman.db import ServerAddress, session, variable
from repman.errors import ConfigError
from repman.local.node import LocalNodeSpec, create_node, delete_node, render_node_config
from repman.local.ports import free_port_block
from repman.local.testbed import ADMIN
from repman.mycnf import NodeContext, known_tags, render_mycnf, validate_tags
from repman.plans import get_plan
from testkit.env import needs_mariadb

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
FIRST_TAGS = sorted(REQUIRED_TAGS | {"durable", "threadpool"})
SERVER_TAG_SETS = [
    sorted(set(FIRST_TAGS) - {"nodurable"}),
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


# -- repman's whole configurator vocabulary (issue 16) ------------------------------------------------

SEED_003_DB_TAGS = ["gtidstrict", "bind", "pkg", "innodb", "noquerycache", "slow", "pfs", "linux", "readonly",
                    "diskmonitor", "sqlerror", "compressbinlog", "bm4ci", "mroonga", "utctime", "readcommitted",
                    "nohandshake", "ssl"]
SEED_003_PROXY_TAGS = ["pkg", "masterslave", "linux", "noreadwritesplit", "ssl"]
REPMAN_DEFAULT_DB_TAGS = "semisync,row,innodb,noquerycache,threadpool,slow,pfs,docker,linux,readonly,diskmonitor," \
                         "sqlerror,compressbinlog"


def test_repman_vocabulary_is_accepted_platform_hints_render_nothing():
    assert validate_tags(SEED_003_DB_TAGS) == SEED_003_DB_TAGS
    assert validate_tags(REPMAN_DEFAULT_DB_TAGS.split(","))
    assert {"docker", "pkg", "linux", "deb", "rpm", "diskmonitor", "sqlerror", "mroonga", "nohandshake",
            "bind", "logslow", "audit", "firstmatch", "tokudb"} <= set(known_tags())
    with_hints = render_mycnf(["row", "docker", "linux", "bind", "tokudb"], get_plan("x1.tiny"), ctx())
    plain = render_mycnf(["row"], get_plan("x1.tiny"), ctx())
    assert with_hints.split("\n", 2)[2] == plain.split("\n", 2)[2]   # only the header line names the tags


def test_optimizer_tags_render_one_optimizer_switch_line():
    text = render_mycnf(["noicp", "firstmatch", "nomrr"], get_plan("x1.tiny"), ctx())
    lines = [l for l in text.splitlines() if l.startswith("optimizer_switch")]
    assert lines == ["optimizer_switch          = 'index_condition_pushdown=off,firstmatch=on,mrr=off'"]


@pytest.mark.parametrize("tags, message", [
    (["row", "statement"], "tags 'row' and 'statement' contradict each other"),
    (["docker", "pkg"], "tags 'docker' and 'pkg' contradict each other"),
    (["readcommitted", "readserialized"], "tags 'readcommitted' and 'readserialized' contradict each other"),
    (["wsrep"], "tag 'wsrep' contradicts this cluster: Galera"),
    (["nologslaveupdates"], "tag 'nologslaveupdates' contradicts this cluster: replicas must log"),
    (["turbo"], "unknown tag 'turbo'"),
])
def test_only_contradictions_and_unknown_tags_are_errors(tags, message):
    with pytest.raises(ConfigError) as err:
        validate_tags(tags)
    assert str(err.value).startswith(f"prov-db-tags: {message}"), str(err.value)


def _plugin_present(tag: str) -> bool:
    import re
    path = Path(__file__).parent.parent / "templates/mycnf/tags" / f"{tag}.cnf.j2"
    text = path.read_text() if path.exists() else ""
    m = re.search(r"plugin_load_add\s*=\s*(\S+)", text)
    return not m or Path(f"/usr/lib/mysql/plugin/{m.group(1)}.so").exists()


def _new_tag_groups() -> list[list[str]]:
    """Every rendering tag not started by the test above, packed greedily into compatible groups."""
    from repman.tags import DB_EXCLUSIVE, DB_TAGS, NOEFFECT, PLATFORM
    todo = [t for t in sorted(DB_TAGS) if t not in FIRST_TAGS and DB_TAGS[t].kind not in (PLATFORM, NOEFFECT)
            and _plugin_present(t) and t not in UNSTARTABLE_HERE]
    groups: list[list[str]] = []
    for tag in todo:
        for group in groups:
            if not any(tag in ex and any(o in ex for o in group) for ex in DB_EXCLUSIVE):
                group.append(tag)
                break
        else:
            groups.append(["row", tag] if tag != "statement" else [tag])
    return groups


#: rendered and checked as text, not started by the node helper: it creates users with short
#: test passwords (pwdchecksimple refuses them) and runs its own SQL in the default sql_mode
UNSTARTABLE_HERE = {"pwdchecksimple", "sqlmodeoracle", "noautocommit"}


def _declared_values(tags: list[str], text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#") and not line.startswith("plugin_load_add"):
            name, value = (p.strip() for p in line.split("=", 1))
            out[name] = value.strip("'")
    return out


def _same(declared: str, running: str) -> bool:
    norm = {"ON": "1", "OFF": "0", "TRUE": "1", "FALSE": "0"}
    d, r = declared.upper(), running.upper()
    if "=" in d:                                    # optimizer_switch, optimizer_trace: flags
        return set(d.split(",")) <= set(r.split(","))
    try:
        return float(d) == float(r)
    except ValueError:
        return norm.get(d, d) == norm.get(r, r) or set(d.split(",")) <= set(r.split(","))


@needs_mariadb
@pytest.mark.slow
@pytest.mark.parametrize("tags", _new_tag_groups(), ids=lambda g: f"{g[1] if len(g) > 1 else g[0]}+{len(g) - 1}")
def test_real_mariadbd_runs_repman_vocabulary(tmp_path: Path, tags: list[str]):
    """Each group of vocabulary tags starts a real mariadbd whose variables are the rendered ones."""
    spec = LocalNodeSpec(base_dir=str(tmp_path / "n"), server_id=12, port=free_port_block(1), plan="x1.tiny",
                         tags=tags, admin_user=ADMIN.user, admin_password=ADMIN.password)
    try:
        create_node(spec)
        with session(ServerAddress(spec.host, spec.port), ADMIN) as conn:
            with conn.cursor() as cur:
                cur.execute("SHOW GLOBAL VARIABLES")
                running = {r["Variable_name"]: str(r["Value"]) for r in cur.fetchall()}
                cur.execute("SELECT LOWER(PLUGIN_LIBRARY) AS lib, PLUGIN_STATUS FROM information_schema.PLUGINS "
                            "WHERE PLUGIN_LIBRARY IS NOT NULL")
                plugins = {r["lib"].removesuffix(".so"): r["PLUGIN_STATUS"] for r in cur.fetchall()}
    finally:
        delete_node(spec, keep_data=False)
    rendered = render_node_config(spec)
    declared = _declared_values(tags, rendered.split("max_connections", 1)[1])
    declared = {("tx_isolation" if k == "transaction_isolation" else k): v for k, v in declared.items()}
    checked = {k: v for k, v in declared.items() if k in running}
    assert len(checked) >= len(declared) - 2, set(declared) - set(running)
    wrong = {k: (v, running[k]) for k, v in checked.items() if not _same(v, running[k])}
    assert not wrong, wrong
    import re
    for lib in re.findall(r"plugin_load_add\s*=\s*(\S+)", rendered):
        assert plugins.get(lib) == "ACTIVE", (lib, plugins.get(lib))


def test_proxy_configs_accept_repman_proxy_tags_and_readonmaster_reaches_the_watcher(tmp_path):
    """Seed 003's proxy tags render HAProxy and ProxySQL configs; readonmaster sets haproxy-read-on-master."""
    from repman.routing.haproxy_config import HAProxyConfig, render_haproxy_config
    from repman.spec import load_cluster_spec
    from repman.watcher_yaml import render_watcher_config

    conf = HAProxyConfig("c1", (ServerAddress("127.0.0.1", 3311),), "s", "t", tags=tuple(SEED_003_PROXY_TAGS))
    assert "frontend" in render_haproxy_config(conf)
    with pytest.raises(ConfigError, match="tag 'multimaster' contradicts this cluster"):
        render_haproxy_config(HAProxyConfig("c1", (ServerAddress("127.0.0.1", 3311),), "s", "t",
                                            tags=("multimaster",)))
    spec = load_cluster_spec({"repman:db-servers-credential": "a:b", "repman:replication-credential": "r:s",
                              "repman:prov-proxy-tags": ["masterslave", "readonmaster", "docker"]})
    section = render_watcher_config(spec, ["127.0.0.1:3310"], lambda name: {"env": "X"})
    section = section["clusters"][spec.name] if "clusters" in section else section
    assert section["haproxy-read-on-master"] is True
