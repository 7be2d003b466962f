"""The `repman` command as a subprocess, against real mariadbd clusters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
import yaml

from repman.api.auth import verify_password
from repman.db import connect, execute
from repman.local.testbed import free_ports
from repman.watcher.state_store import StateStore
from testkit.cli import REPMAN, one_line_error, repman
from testkit.watcherbed import (
    cluster_section,
    converged,
    insert,
    make_table,
    master_of,
    wait_until,
    write_config,
)


def test_help_has_examples_and_every_command():
    p = repman("--help")
    assert p.returncode == 0
    for word in ("status", "switchover", "failover", "watch", "reset-failover-counter", "config", "keys",
                 "examples:", "switchover --to 127.0.0.1:3307", "exit status"):
        assert word in p.stdout
    p = repman("switchover", "--help")
    assert p.returncode == 0 and "--to HOST:PORT" in p.stdout


def test_keys_lists_defaults_and_help():
    p = repman("keys")
    assert p.returncode == 0
    assert "failover-mode" in p.stdout and "manual|automatic" in p.stdout
    assert "haproxy-servers" in p.stdout and "api-port" in p.stdout and "api-users" in p.stdout
    rows = json.loads(repman("keys", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["failover-falsepositive-ping-counter"]["default"] == 5
    assert by_name["monitoring-ticker"]["default"] == 2.0


def test_hash_password_from_stdin():
    p = repman("hash-password", stdin="s3cret\n")
    assert p.returncode == 0
    assert verify_password("s3cret", p.stdout.strip())
    one_line_error(repman("hash-password", stdin="\n"), 2)


BASE = {"db-servers-hosts": ["127.0.0.1:3306", "127.0.0.1:3307"], "db-servers-credential": "u:secretpw",
        "replication-credential": "r:rpw"}


@pytest.mark.parametrize("section, expected", [
    ({"failover-mode": "sometimes"}, "repman: clusters.c1.failover-mode: 'sometimes' is not one of manual, automatic"),
    ({"monitoring-tickr": 1},
     "repman: clusters.c1.monitoring-tickr: unknown key (value 1); did you mean monitoring-ticker?"),
    ({"monitoring-ticker": "soon"}, "repman: clusters.c1.monitoring-ticker: expected a number, got 'soon'"),
    ({"db-servers-hosts": ["db 1"]}, "repman: clusters.c1.db-servers-hosts: bad host:port 'db 1'"),
    ({"db-servers-hosts": []}, "repman: clusters.c1.db-servers-hosts: is required"),
    ({"db-servers-credential": "justuser"},
     "repman: clusters.c1.db-servers-credential: expected user:password, got a value without ':' "
     "(8 characters, not shown)"),
    ({"replication-credential": {"env": "REPMAN_TEST_NOPE"}},
     "repman: clusters.c1.replication-credential: environment variable 'REPMAN_TEST_NOPE' is not set"),
])
def test_bad_config_is_one_line_exit_2(tmp_path, section, expected):
    cfg = write_config(tmp_path / "r.yaml", {"c1": {**BASE, **section}})
    for cmd in (["config", "check"], ["status"], ["switchover"], ["watch"]):
        line = one_line_error(repman("--config", str(cfg), *cmd), 2)
        assert line.startswith(expected), line
        assert "secretpw" not in line


def test_config_file_problems(tmp_path):
    line = one_line_error(repman("--config", str(tmp_path / "missing.yaml"), "status"), 2)
    assert "cannot read" in line and "missing.yaml" in line
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters: [\n")
    assert "invalid YAML at line" in one_line_error(repman("--config", str(bad), "config", "check"), 2)
    env = {k: v for k, v in os.environ.items() if k != "REPMAN_CONFIG"}
    p = subprocess.run([*REPMAN, "status"], capture_output=True, text=True, env=env, timeout=60)
    assert "no configuration file given" in one_line_error(p, 2)


def test_config_check_and_cluster_selection(tmp_path):
    cfg = write_config(tmp_path / "r.yaml", {"a": dict(BASE), "b": dict(BASE)})
    p = repman("--config", str(cfg), "config", "check")
    assert p.returncode == 0 and "configuration is valid" in p.stdout
    assert "secretpw" not in p.stdout
    assert "name one" in one_line_error(repman("--config", str(cfg), "switchover"), 2)
    assert "no cluster 'zz'" in one_line_error(repman("--config", str(cfg), "--cluster", "zz", "status"), 2)
    # options are accepted after the command too
    assert "no cluster 'zz'" in one_line_error(repman("status", "--config", str(cfg), "--cluster", "zz"), 2)


def test_unreachable_cluster_status_and_refused_switchover(tmp_path):
    cfg = write_config(tmp_path / "r.yaml", {"c1": {**BASE, "db-servers-hosts": ["127.0.0.1:1", "127.0.0.1:2"],
                                                     "monitoring-datadir": str(tmp_path / "s")}})
    p = repman("--config", str(cfg), "status", "--json")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    assert all(s["reachable"] is False and s["error"] for s in st["servers"])
    line = one_line_error(repman("--config", str(cfg), "switchover"), 1)
    assert "refused" in line


# -- against a real cluster -------------------------------------------------------------------

@pytest.fixture
def cluster(testbed, tmp_path):
    testbed.bootstrap()
    make_table(testbed, testbed.addresses[0])
    insert(testbed, testbed.addresses[0], 10)
    cfg = write_config(tmp_path / "repman.yaml", {"c1": cluster_section(
        testbed, tmp_path / "state", switchover_wait_write_query=1.0)})
    return testbed, cfg


def test_status_text_and_json(cluster):
    bed, cfg = cluster
    converged(bed)
    p = repman("--config", str(cfg), "status")
    assert p.returncode == 0, p.stderr
    master = bed.addresses[0]
    assert f"cluster c1: master {master}, failover-mode manual, failovers 0/5" in p.stdout
    assert f"master {master} is healthy with 2 replicas" in p.stdout
    p = repman("--config", str(cfg), "status", "--json")
    assert p.returncode == 0
    for secret in (bed.admin.password, bed.replication.password):
        assert secret not in p.stdout
    st = json.loads(p.stdout)
    assert st["master"] == master.url
    servers = {s["url"]: s for s in st["servers"]}
    m = servers[master.url]
    assert (m["role"], m["state"], m["read_only"]) == ("master", "Master", False)
    for r in bed.addresses[1:]:
        s = servers[r.url]
        assert (s["role"], s["state"], s["read_only"]) == ("replica", "Slave", True)
        assert s["master_url"] == master.url and (s["io_thread"], s["sql_thread"]) == ("Yes", "Yes")
        assert s["seconds_behind_master"] == 0 and s["last_io_error"] is None and s["last_sql_error"] is None
        assert s["gtid_current_pos"] == m["gtid_binlog_pos"] and s["gtid_io_pos"]


def test_switchover_to_and_back_then_refused_with_open_transaction(cluster):
    bed, cfg = cluster
    first, second = bed.addresses[0], bed.addresses[1]
    p = repman("--config", str(cfg), "switchover", "--to", second.url)
    assert p.returncode == 0, p.stderr
    assert second.url in p.stdout
    assert master_of(bed) == second
    insert(bed, second, 3)
    p = repman("--config", str(cfg), "switchover", "--to", first.url, "--json")
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["ok"] and result["new_primary"] == first.url and result["old_primary"] == second.url
    assert master_of(bed) == first
    converged(bed)
    # an open transaction older than switchover-wait-write-query (1 s) refuses the switchover
    conn = connect(first, bed.admin, autocommit=False)
    try:
        execute(conn, "BEGIN")
        execute(conn, "INSERT INTO repman_test.t (v) VALUES ('held open')")
        time.sleep(1.5)
        p = repman("--config", str(cfg), "switchover")
        line = one_line_error(p, 1)
        assert "refused" in line
        assert master_of(bed) == first
    finally:
        conn.rollback()
        conn.close()
    converged(bed)
    # a bad --to is a usage error, an unknown server a refusal
    assert "--to: bad host:port" in one_line_error(repman("--config", str(cfg), "switchover", "--to", "nope"), 2)
    one_line_error(repman("--config", str(cfg), "switchover", "--to", "127.0.0.1:1"), 1)


def test_failover_refused_while_master_lives_then_done_after_kill(cluster, tmp_path):
    bed, cfg = cluster
    master = bed.addresses[0]
    converged(bed)
    one_line_error(repman("--config", str(cfg), "failover"), 1)
    assert master_of(bed) == master
    bed.kill(master)
    p = repman("--config", str(cfg), "failover", "-v")
    assert p.returncode == 0, p.stderr
    new = master_of(bed)
    assert new != master and new.url in p.stdout
    store = StateStore(tmp_path / "state" / "c1")
    assert store.load().failover_count == 1
    p = repman("--config", str(cfg), "reset-failover-counter")
    assert p.returncode == 0 and "reset to 0 (was 1)" in p.stdout
    assert store.load().failover_count == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_watch_runs_until_signal_and_exits_cleanly(cluster, sig, tmp_path):
    bed, cfg = cluster
    port = free_ports(1)[0]
    if sig == signal.SIGTERM:      # this run also serves the HTTP API
        raw = yaml.safe_load(cfg.read_text())
        cfg = write_config(tmp_path / "with-api.yaml", raw["clusters"], api={"api-port": port})
    proc = subprocess.Popen([*REPMAN, "--config", str(cfg), "watch"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("is healthy with 2 replicas" in line for line in lines), 60, "a healthy tick")
        if sig == signal.SIGTERM:
            assert any(f"api listening on http://127.0.0.1:{port}" in line for line in lines)
            master = bed.addresses[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/primary?server={master}", timeout=30) as resp:
                assert resp.status == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
        reader.join(10)
        assert any(line.rstrip().endswith("stopped") for line in lines)
        assert not any("Traceback" in line for line in lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_maintenance_on_off_is_persisted_shown_and_excluded_from_election(cluster, tmp_path):
    bed, cfg = cluster
    master, held, other = bed.addresses
    converged(bed)
    p = repman("--config", str(cfg), "maintenance", "on", held.url)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{held.url} is now in maintenance in cluster c1")
    assert "already in maintenance" in repman("--config", str(cfg), "maintenance", "on", held.url).stdout
    store = StateStore(tmp_path / "state" / "c1")
    assert store.load().maintenance == [held.url]
    st = json.loads(repman("--config", str(cfg), "status", "--json").stdout)
    assert st["maintenance"] == [held.url]
    servers = {s["url"]: s for s in st["servers"]}
    assert (servers[held.url]["maintenance"], servers[held.url]["state"]) == (True, "Maintenance")
    assert (servers[other.url]["maintenance"], servers[other.url]["state"]) == (False, "Slave")
    assert servers[master.url]["maintenance"] is False
    text = repman("--config", str(cfg), "status").stdout
    assert f"in maintenance: {held.url}" in text
    assert any(line.split()[:2] == [held.url, "Maintenance"] for line in text.splitlines())
    # never elected: refused when asked for, passed over otherwise
    line = one_line_error(repman("--config", str(cfg), "switchover", "--to", held.url), 1)
    assert f"{held.url} is in maintenance" in line
    p = repman("--config", str(cfg), "switchover")
    assert p.returncode == 0, p.stderr
    assert master_of(bed) == other
    p = repman("--config", str(cfg), "maintenance", "off", held.url)
    assert p.returncode == 0 and f"{held.url} is back out of maintenance" in p.stdout
    assert store.load().maintenance == []
    p = repman("--config", str(cfg), "switchover", "--to", held.url)
    assert p.returncode == 0, p.stderr
    assert master_of(bed) == held
    converged(bed)
    # bad input: one line naming the value
    line = one_line_error(repman("--config", str(cfg), "maintenance", "on", "127.0.0.1:1"), 2)
    assert line.startswith("repman: HOST:PORT: 127.0.0.1:1 is not a server of cluster c1")
    assert "bad host:port 'junk'" in one_line_error(repman("--config", str(cfg), "maintenance", "on", "junk"), 2)
    p = repman("--config", str(cfg), "maintenance", "maybe", held.url)
    assert p.returncode == 2 and "invalid choice: 'maybe'" in p.stderr and "Traceback" not in p.stderr
