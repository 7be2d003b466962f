"""The shipped monitoring files: alert rules checked by the real promtool, a Grafana dashboard that
names only metrics the watcher exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from repman.watcher.metrics import Histogram, WatcherCollector
from testkit.prometheus import PROMTOOL

MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
RULES = MONITORING / "repman-alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"


def exported() -> set[str]:
    """Every sample name the watcher's collector can produce."""
    names = set()
    for family in WatcherCollector({}).collect():
        if isinstance(family, CounterMetricFamily):
            names.add(family.name + "_total")
        elif isinstance(family, HistogramMetricFamily):
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    no_strings = re.sub(r'"[^"]*"', "", expr)
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_strings)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", no_ranges) if w.startswith("repman_")}


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dash["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool not installed")
def test_promtool_accepts_the_alert_rules():
    out = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 9 rules found" in out.stdout


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool not installed")
def test_promtool_rejects_a_broken_rule(tmp_path):
    """The check above can fail: the same file with one broken expression does not pass."""
    broken = tmp_path / "broken.yml"
    text = RULES.read_text()
    assert "repman_replication_lag_seconds > 30" in text
    broken.write_text(text.replace("repman_replication_lag_seconds > 30", "repman_replication_lag_seconds >"))
    out = subprocess.run([PROMTOOL, "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0


def test_alert_rules_and_dashboard_name_only_exported_metrics():
    names = exported()
    assert {"repman_server_up", "repman_server_role", "repman_failovers_total", "repman_tick_duration_seconds_bucket",
            "repman_operation_duration_seconds_count", "repman_backup_last_success_timestamp_seconds"} <= names
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    exprs = [r["expr"] for r in rules] + dashboard_exprs()
    assert len(exprs) > 10
    used = set().union(*(metric_names(e) for e in exprs))
    assert used and used <= names, used - names
    assert metric_names('rate(repman_nope_total{cluster="repman_x"}[5m])') == {"repman_nope_total"}


def test_dashboard_panels_are_complete():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "repman-clusters"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]


def test_histogram_buckets_are_cumulative_and_le_inclusive():
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    buckets, total = h.buckets()
    assert buckets == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert total == pytest.approx(3.65)
