"""Seed 004's provisioning details: prov-db-* settings rendered instead of hard-coded values,
initial data (SQL, CSV) on real servers, live vs restart for dynamic config, the plan registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from repman.bootstrap import BootstrapRequest, bootstrap
from repman.db import ServerAddress, session, variable
from repman.errors import BootstrapError, ConfigError
from repman.initial_data import load_initial_data
from repman.local.node import LocalNodeSpec, create_node, delete_node, render_node_config, update_node
from repman.local.ports import free_port_block
from repman.local.testbed import ADMIN, Testbed
from repman.plans import load_registry
from repman.spec import load_cluster_spec
from testkit.env import needs_mariadb
from testkit.standins.json_http import JsonHandler, StandinServer

CREDS = {"repman:db-servers-credential": "repman:pw-a", "repman:replication-credential": "repl:pw-r"}
REGISTRY = ("id,plan,dbmemory,dbcores,dbdatasize,dbsystemsize,dbiops,dbcpufreq,prxcores,prxdatasize\n"
            "1,x1.small,16384,2,700,300,300,3000,1,80\n"
            "2,x2.tiny,1024,2,20,10,300,3000,1,1\n")


def spec(tmp_path: Path, **extra):
    return load_cluster_spec({**CREDS, **{f"repman:{k}": v for k, v in extra.items()}}, project_dir=tmp_path)


def test_prov_db_settings_reach_the_nodes_only_when_not_default(tmp_path):
    assert spec(tmp_path).db_settings() == {}
    s = spec(tmp_path, **{"prov-db-max-connections": 500, "prov-db-expire-log-days": 2, "prov-db-domain": 7,
                          "prov-db-apply-dynamic-config": False})
    assert s.db_settings() == {"max_connections": 500, "expire_logs_days": 2, "gtid_domain_id": 7,
                               "apply_dynamic_config": False}
    node = LocalNodeSpec(base_dir=str(tmp_path / "n"), server_id=1, port=3399, plan="x1.tiny",
                         db_settings=s.db_settings())
    text = render_node_config(node)
    for line in ("max_connections           = 500", "expire_logs_days          = 2",
                 "gtid_domain_id            = 7"):
        assert line in text


@pytest.mark.parametrize("extra, message", [
    ({"prov-db-max-connections": 1}, "repman:prov-db-max-connections: 1 is below the minimum 10"),
    ({"prov-db-domain": -1}, "repman:prov-db-domain: -1 is below the minimum 0"),
    ({"prov-db-expire-log-days": "soon"}, "repman:prov-db-expire-log-days: expected an integer"),
    ({"prov-serialized": "maybe"}, "repman:prov-serialized: expected true or false"),
    ({"prov-service-plan-registry": "/nonexistent/plans.csv"},
     "repman:prov-service-plan-registry: cannot read /nonexistent/plans.csv"),
])
def test_bad_provisioning_values_name_the_key(tmp_path, extra, message):
    with pytest.raises(ConfigError) as err:
        spec(tmp_path, **extra)
    assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)


def test_load_paths_are_resolved_from_the_project(tmp_path):
    s = spec(tmp_path, **{"prov-db-load-sql": "init/a.sql,init/b.sql", "prov-db-load-csv": ["shop.items.csv"]})
    assert s.values["prov-db-load-sql"] == [str(tmp_path / "init/a.sql"), str(tmp_path / "init/b.sql")]
    assert s.values["prov-db-load-csv"] == [str(tmp_path / "shop.items.csv")]


def test_plan_registry_from_a_csv_file(tmp_path):
    path = tmp_path / "serviceplan.csv"
    path.write_text(REGISTRY)
    plans = load_registry(str(path))
    assert plans["x1.small"].memory_mb == 16384 and plans["x1.small"].data_size_gb == 700
    assert plans["x2.tiny"].db_nodes == 2
    s = spec(tmp_path, **{"prov-service-plan-registry": str(path), "prov-service-plan": "x2.tiny"})
    assert s.node_count == 2 and s.plan.memory_mb == 1024
    with pytest.raises(ConfigError, match=r"^repman:prov-service-plan: unknown service plan 'x3.tiny' "
                                          r"\(known: x1.small, x2.tiny\)"):
        spec(tmp_path, **{"prov-service-plan-registry": str(path)})
    path.write_text("plan,dbmemory\nx1.a,1\n")
    with pytest.raises(ConfigError, match=r"prov-service-plan-registry: .* \(missing dbcores"):
        load_registry(str(path))


def test_plan_registry_from_a_url(tmp_path):
    class Handler(JsonHandler):
        def do_GET(self):  # noqa: N802
            self._reply(200, REGISTRY, content_type="text/csv")

    server = StandinServer(Handler)
    try:
        plans = load_registry(f"{server.url}/pub?output=csv")
    finally:
        server.close()
    assert sorted(plans) == ["x1.small", "x2.tiny"]


@needs_mariadb
@pytest.mark.slow
def test_initial_data_loads_once_on_the_primary_and_replicates(tmp_path):
    (tmp_path / "schema.sql").write_text(
        "CREATE DATABASE shop;\nCREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20), price INT);\n"
        "INSERT INTO shop.items VALUES (1, 'first', 10);\n")
    (tmp_path / "shop.items.csv").write_text('id,name,price\n2,"second, with comma",20\n3,third,\n')
    bed = Testbed.create(tmp_path / "bed", 2)
    try:
        request = BootstrapRequest(servers=bed.addresses, admin=bed.admin, replication=bed.replication,
                                   load_sql=[str(tmp_path / "schema.sql")],
                                   load_csv=[str(tmp_path / "shop.items.csv")])
        first = bootstrap(request)
        assert "ran schema.sql" in first.actions and "loaded 2 rows from shop.items.csv" in first.actions
        again = bootstrap(request)                      # a second up loads nothing twice
        assert not [a for a in again.actions if "schema.sql" in a or "csv" in a]
        for addr in bed.addresses:                      # the replica has the rows through replication
            with session(addr, bed.admin) as conn, conn.cursor() as cur:
                cur.execute("SELECT id, name, price FROM shop.items ORDER BY id")
                assert [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()] == [
                    (1, "first", 10), (2, "second, with comma", 20), (3, "third", None)]
        (tmp_path / "bad.sql").write_text("INSERT INTO shop.nope VALUES (1);")
        with pytest.raises(BootstrapError, match=r"^prov-db-load-sql: bad.sql: Table 'shop.nope' doesn't exist"):
            load_initial_data(first.primary, bed.admin, [str(tmp_path / "bad.sql")], [])
        with pytest.raises(BootstrapError, match=r"must be named <schema>.<table>.csv"):
            (tmp_path / "items.csv").write_text("id\n9\n")
            load_initial_data(first.primary, bed.admin, [], [str(tmp_path / "items.csv")])
    finally:
        bed.destroy()


@needs_mariadb
@pytest.mark.slow
def test_apply_dynamic_config_live_or_by_restart(tmp_path):
    """prov-db-apply-dynamic-config on: a dynamic change is SET GLOBAL; off: the node restarts."""
    node = LocalNodeSpec(base_dir=str(tmp_path / "n"), server_id=5, port=free_port_block(1), plan="x1.tiny",
                         tags=["row"], admin_user=ADMIN.user, admin_password=ADMIN.password)
    try:
        create_node(node)
        live = LocalNodeSpec(**{**node.as_dict(), "db_settings": {"expire_logs_days": 3}})
        assert update_node(node, live) == "live"
        off = LocalNodeSpec(**{**node.as_dict(), "db_settings": {"expire_logs_days": 2,
                                                                 "apply_dynamic_config": False}})
        assert update_node(live, off) == "restarted"
        with session(ServerAddress(node.host, node.port), ADMIN) as conn:
            assert float(variable(conn, "expire_logs_days")) == 2
    finally:
        delete_node(node, keep_data=False)


@needs_mariadb
@pytest.mark.slow
def test_config_drift_reports_a_variable_changed_by_hand(tmp_path):
    """`repman config drift`: declared (stack: tags, plan, prov-db-*) against SHOW GLOBAL VARIABLES."""
    import subprocess
    import sys

    import yaml

    from repman.local.testbed import DEFAULT_TAGS

    bed = Testbed.create(tmp_path / "bed", 2, tags=DEFAULT_TAGS + ("innodb",), plan="x2.tiny")
    try:
        bed.bootstrap()
        (tmp_path / "stacks").mkdir()
        stack = tmp_path / "stacks" / "Pulumi.drift.yaml"
        stack.write_text(yaml.safe_dump({"config": {
            "repman:prov-service-plan": "x2.tiny", "repman:prov-db-tags": list(DEFAULT_TAGS) + ["innodb"],
            "repman:db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
            "repman:replication-credential": f"{bed.replication.user}:{bed.replication.password}"}}))
        watcher = tmp_path / "repman.yaml"
        watcher.write_text(yaml.safe_dump({"clusters": {"drift": {
            "db-servers-hosts": [a.url for a in bed.addresses],
            "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
            "replication-credential": f"{bed.replication.user}:{bed.replication.password}"}}}))
        cmd = [sys.executable, "-m", "repman.cli", "--config", str(watcher), "config", "drift", "--stack", str(stack)]
        clean = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert f"{bed.addresses[1].url}: " in clean.stdout and " declared settings as running" in clean.stdout
        with bed.connect(bed.addresses[1]) as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL expire_logs_days = 1")
        drifted = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert drifted.returncode == 3, drifted.stdout + drifted.stderr
        assert f"{bed.addresses[1].url} expire_logs_days: declared '5', running '1" in drifted.stdout
        assert bed.addresses[0].url + " expire_logs_days" not in drifted.stdout
    finally:
        bed.destroy()


def test_stack_prefered_master_is_a_list_as_in_repman(tmp_path):
    from repman.watcher_yaml import preferred_master

    s = spec(tmp_path, **{"db-servers-prefered-master": "2,1"})
    assert s.preferred_master == 2 and s.preferred_masters == (2, 1)
    servers = ["127.0.0.1:3310", "127.0.0.1:3311", "127.0.0.1:3312"]
    assert preferred_master(s, servers) == "127.0.0.1:3311,127.0.0.1:3310"
    assert preferred_master(spec(tmp_path), servers) == "127.0.0.1:3310"
    with pytest.raises(ConfigError, match=r"^repman:db-servers-prefered-master: node index 9 is not between 1 and 3"):
        spec(tmp_path, **{"db-servers-prefered-master": "1,9"})


def test_onpremise_nodes_render_the_prov_db_settings(tmp_path):
    from repman.backends.onpremise import HostFacts, OnPremNodeSpec, render_node_config as render_onprem

    node = OnPremNodeSpec(host="10.0.0.5", node_name="shop-db1", server_id=1, port=3306, plan="x1.tiny",
                          tags=["row"], base_dir="/var/lib/repman/shop-db1", admin_user="repman",
                          db_settings={"max_connections": 321, "expire_logs_days": 9, "gtid_domain_id": 4})
    facts = HostFacts(os_id="debian", kernel="6", memory_mb=4096, cores=2, systemd=False, server="mariadbd",
                      service_user="mysql")
    text = render_onprem(node, facts)
    for line in ("max_connections           = 321", "expire_logs_days          = 9", "gtid_domain_id            = 4"):
        assert line in text


def test_opensvc_config_object_renders_the_prov_db_settings():
    from repman.backends.opensvc import node_config_keys
    from repman.plans import get_plan

    text = node_config_keys(["row"], get_plan("x1.tiny"), {"max_connections": 444, "gtid_domain_id": 2})["repman.cnf"]
    assert "max_connections           = 444" in text and "gtid_domain_id            = 2" in text
