"""`repman backup`, `backups`, `restore` as subprocesses: real backups of a real cluster, the
catalog in text and JSON, one-line refusals and errors."""

from __future__ import annotations

import json

import pytest
import yaml

from repman.local.ports import free_port_block
from testkit.cli import one_line_error, repman
from testkit.cluster import raw_section
from testkit.env import needs_mariadb


def test_backup_keys_are_listed():
    rows = {r["name"]: r for r in json.loads(repman("keys", "--json").stdout)}
    for key in ("backup-physical-type", "backup-logical-type", "backup-restic", "backup-restic-repository",
                "backup-restic-password", "backup-binlogs", "backup-keep-hourly", "backup-keep-daily",
                "backup-keep-weekly", "backup-keep-monthly", "monitoring-scheduler",
                "scheduler-db-servers-physical-backup-cron", "scheduler-db-servers-logical-backup-cron"):
        assert key in rows, key


def test_bad_cron_and_bad_time_are_one_line_errors(tmp_path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump({"clusters": {"c1": {
        "db-servers-hosts": ["127.0.0.1:1"], "db-servers-credential": "a:b", "replication-credential": "r:s",
        "scheduler-db-servers-logical-backup-cron": "61 * * * *"}}}))
    line = one_line_error(repman("--config", str(cfg), "config", "check"), 2)
    assert "clusters.c1.scheduler-db-servers-logical-backup-cron" in line
    cfg.write_text(yaml.safe_dump({"clusters": {"c1": {
        "db-servers-hosts": ["127.0.0.1:1"], "db-servers-credential": "a:b", "replication-credential": "r:s"}}}))
    line = one_line_error(repman("--config", str(cfg), "restore", "--to-time", "yesterday", "--target",
                                 "127.0.0.1:2", "--datadir", str(tmp_path / "d")), 2)
    assert "--to-time" in line


@needs_mariadb
@pytest.mark.slow
def test_backup_then_catalog_then_restore_refused_over_a_live_member(cluster_factory, tmp_path):
    c = cluster_factory(count=2)
    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump({"clusters": {"test": raw_section(c, **{"backup-keep-last": 5})}}))
    p = repman("--config", str(cfg), "backup", "--type", "logical", "--json")
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["status"] == "ok" and rec["gtid"] and rec["server"] != c.primary().url
    p = repman("--config", str(cfg), "backup")
    assert p.returncode == 0 and "physical backup" in p.stdout, p.stderr
    listed = json.loads(repman("--config", str(cfg), "backups", "--json", "--check").stdout)
    assert [b["type"] for b in listed["backups"]] == ["logical", "physical"]
    assert all(b["status"] == "ok" and b["size"] > 0 for b in listed["backups"])
    assert "backups" in listed["checks"]["repository"]
    text = repman("--config", str(cfg), "backups").stdout
    assert rec["id"] in text and "SIZE" in text and c.bed.admin.password not in text
    live = c.primary()
    line = one_line_error(repman("--config", str(cfg), "restore", "--to-gtid", rec["gtid"], "--target", live.url,
                                 "--datadir", str(tmp_path / "x")), 1)
    assert "live member" in line and live.url in line
    assert not (tmp_path / "x").exists()
    target = f"127.0.0.1:{free_port_block(1)}"
    line = one_line_error(repman("--config", str(cfg), "restore", "--to-gtid", "0-1-999999", "--target", target,
                                 "--datadir", str(tmp_path / "y")), 1)
    assert "ends before 0-1-999999" in line or "no good physical backup" in line, line
    assert not (tmp_path / "y").exists()
    line = one_line_error(repman("--config", str(cfg), "restore", "--to-gtid", rec["gtid"], "--target",
                                 "192.0.2.7:3306", "--datadir", str(tmp_path / "z")), 1)
    assert "not an address of this machine" in line
