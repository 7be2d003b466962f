"""GET /metrics of a real watcher on a real 3-node cluster, and a real Prometheus server scraping it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from repman.api.auth import hash_password
from testkit.api_client import USERS, Running, call
from testkit.prometheus import PrometheusServer, have_prometheus
from testkit.watcherbed import sql, wait_until

RULES = Path(__file__).resolve().parent.parent / "monitoring" / "repman-alerts.yml"
DASHBOARD = RULES.parent / "grafana-dashboard.json"


@pytest.fixture
def bed(seeded_bed):
    return seeded_bed


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) -> value, from the exposition text (parsed by prometheus_client's own parser)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_metrics_show_the_cluster_and_need_a_viewer(bed, tmp_path):
    master, r1, r2 = bed.addresses
    users = {**USERS, "other": {"role": "viewer", "password-hash": hash_password("other-pass"), "clusters": ["c9"]}}
    with Running(bed, tmp_path, {"api-users": users}) as r:
        code, headers, _ = call(r.url("/metrics"))
        assert code == 401 and headers["WWW-Authenticate"].startswith("Basic")
        code, headers, text = call(r.url("/metrics"), user=("eve", "eve-pass"))
        assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        for secret in (bed.admin.password, bed.replication.password, "eve-pass"):
            assert secret not in text
        found = samples(text)
        for a in bed.addresses:
            assert value(found, "repman_server_up", cluster="c1", server=a.url) == 1
        assert value(found, "repman_server_role", cluster="c1", server=master.url, role="master") == 1
        assert value(found, "repman_server_role", cluster="c1", server=r1.url, role="master") == 0
        assert value(found, "repman_server_role", cluster="c1", server=r1.url, role="replica") == 1
        assert value(found, "repman_server_read_only", cluster="c1", server=master.url) == 0
        assert value(found, "repman_server_read_only", cluster="c1", server=r2.url) == 1
        for replica in (r1, r2):
            assert value(found, "repman_replication_io_running", cluster="c1", server=replica.url) == 1
            assert value(found, "repman_replication_sql_running", cluster="c1", server=replica.url) == 1
            assert value(found, "repman_replication_lag_seconds", cluster="c1", server=replica.url) >= 0
        assert ("repman_replication_io_running", frozenset({("cluster", "c1"), ("server", master.url)})) not in found
        assert value(found, "repman_decision", cluster="c1", rule="healthy", action="nothing") == 1
        assert value(found, "repman_failovers_total", cluster="c1") == 0
        assert value(found, "repman_tick_duration_seconds_count", cluster="c1") >= 1
        # the GTID sequence is the server's own: compare with what the master says now
        seq = int(sql(bed, master, "SELECT @@gtid_binlog_pos AS p")[0]["p"].split("-")[-1])
        assert value(found, "repman_gtid_sequence", cluster="c1", server=master.url, domain="0") == seq
        # a stopped SQL thread shows within a tick or two
        sql(bed, r1, "STOP SLAVE SQL_THREAD")
        try:
            wait_until(lambda: value(samples(call(r.url("/metrics"), user=("eve", "eve-pass"))[2]),
                                     "repman_replication_sql_running", cluster="c1", server=r1.url) == 0,
                       30, "sql_running 0")
        finally:
            sql(bed, r1, "START SLAVE SQL_THREAD")
        # a viewer of another cluster sees none of this one
        code, _, text = call(r.url("/metrics"), user=("other", "other-pass"))
        assert code == 200 and 'cluster="c1"' not in text and "# TYPE repman_server_up gauge" in text


@pytest.mark.skipif(not have_prometheus(), reason="prometheus not installed")
def test_real_prometheus_scrapes_the_watcher(bed, tmp_path):
    master, r1, r2 = bed.addresses
    with Running(bed, tmp_path, {}) as r, \
            PrometheusServer(tmp_path / "prom", r.url("/metrics"), auth=("eve", "eve-pass"), rules=[RULES]) as prom:
        wait_until(lambda: [t for t in prom.targets() if t["health"] == "up"], 30, "target up")
        up = wait_until(lambda: prom.query("repman_server_up == 1"), 30, "repman_server_up series")
        wait_until(lambda: len(prom.query("repman_server_up == 1")) == 3, 30, "three servers up")
        assert {s["metric"]["server"] for s in prom.query("repman_server_up == 1")} == {a.url for a in bed.addresses}
        assert all(s["metric"]["cluster"] == "c1" for s in up)
        masters = prom.query('repman_server_role{role="master"} == 1')
        assert [s["metric"]["server"] for s in masters] == [master.url]
        assert len(prom.query("repman_replication_sql_running == 1")) == 2
        # a switchover from the API: counted, timed, and the role follows in Prometheus
        code, _, body = call(r.url("/api/clusters/c1/switchover"), "POST", ("ops", "ops-pass"), {"to": r2.url})
        assert code == 200, body
        wait_until(lambda: prom.query('repman_switchovers_total{cluster="c1"} == 1'), 30, "switchover counted")
        wait_until(lambda: [s["metric"]["server"] for s in prom.query('repman_server_role{role="master"} == 1')]
                   == [r2.url], 30, "new master in Prometheus")
        ops = prom.query('repman_operation_duration_seconds_count{kind="switchover",outcome="ok"}')
        assert float(ops[0]["value"][1]) == 1
        # the shipped alert rules load in this Prometheus and the failover/switchover rule evaluates
        def rules() -> list[dict]:
            return [rule for g in prom.api("rules")["groups"] for rule in g["rules"]]

        assert {"RepmanMasterDown", "RepmanReplicationStopped", "RepmanWatcherDown"} <= {x["name"] for x in rules()}
        wait_until(lambda: all(x["health"] == "ok" for x in rules()), 30, "every rule evaluated without error")
        # nothing fires on a healthy cluster but the switchover notice
        firing = {x["name"] for x in rules() if x["state"] == "firing"}
        assert firing <= {"RepmanSwitchoverHappened"}, firing
        # every query of the Grafana dashboard is valid PromQL for this Prometheus, and the panels have data
        panels = json.loads(DASHBOARD.read_text())["panels"]
        with_data = 0
        for p in panels:
            for t in p["targets"]:
                with_data += bool(prom.query(t["expr"].replace("$cluster", ".*")))
        assert with_data >= len(panels) - 3      # the backup panel (no backups here) and quantiles may be empty
