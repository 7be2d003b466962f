"""The watcher's scheduler on a real cluster: cron jobs fire on time, one of a kind at a time,
never delay the monitoring tick, and a job cut by a watcher's death (kill -9) is reported as
interrupted by the next watcher, which goes on scheduling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from repman.watcher.config import load_cluster
from repman.watcher.loop import Watcher
from repman.watcher.operations import store_for
from testkit.cluster import raw_section
from testkit.env import needs_mariadb
from testkit.polling import wait_until

pytestmark = [needs_mariadb, pytest.mark.slow]


def _jobs_when(store, predicate):
    """The job history once ``predicate`` holds for it (for ``wait_until``), else None."""
    def probe():
        runs = store.load().jobs
        return runs if predicate(runs) else None
    return probe


def test_jobs_fire_on_time_one_at_a_time_and_ticks_go_on(cluster_factory):
    c = cluster_factory(count=2)
    cfg = load_cluster("test", raw_section(c, **{
        "monitoring-ticker": 0.1, "monitoring-scheduler": True,
        "scheduler-db-servers-physical-backup-cron": "* * * * * *",      # every second; a backup takes longer
        "scheduler-db-servers-logical-backup-cron": "*/2 * * * * *",
        "backup-keep-last": 100,
    }))
    watcher = Watcher.for_clusters([cfg])
    monitor = watcher.monitors["test"]
    assert monitor.scheduler is not None
    ends: list[float] = []
    real_tick = monitor.tick

    def recorded_tick():
        try:
            return real_tick()
        finally:
            ends.append(time.monotonic())
    monitor.tick = recorded_tick
    watcher.start()
    try:
        time.sleep(7)
    finally:
        watcher.stop()
    runs = store_for(cfg).load().jobs
    phys = [r for r in runs if r["kind"] == "physical-backup"]
    logi = [r for r in runs if r["kind"] == "logical-backup"]
    ok_phys = [r for r in phys if r["status"] == "ok"]
    assert len(ok_phys) >= 2 and len([r for r in logi if r["status"] == "ok"]) >= 2, runs
    assert any(r["status"] == "skipped" for r in phys), "a due run while one runs must be skipped"
    for a, b in zip(ok_phys, ok_phys[1:]):
        assert b["started_at"] >= a["ended_at"], "two physical backups ran at once"
    for r in runs:
        assert r["started_at"] - r["scheduled_at"] < 0.5, f"fired late: {r}"
    gaps = [b - a for a, b in zip(ends, ends[1:])]
    assert len(ends) > 40 and max(gaps) < 1.0, f"{len(ends)} ticks, longest gap {max(gaps):.2f}s"
    st = monitor.status()
    assert st["jobs"] and {j["kind"] for j in st["schedule"]} == {"physical-backup", "logical-backup"}
    # The HTTP API serves the same history.
    import urllib.request

    from repman.api.config import ApiConfig
    from repman.api.server import ApiServer
    from repman.local.ports import free_port_block
    api = ApiServer(ApiConfig(enabled=True, port=free_port_block(1), anonymous_read=True), watcher)
    api.start()
    try:
        with urllib.request.urlopen(f"{api.url}/api/clusters/test", timeout=10) as resp:
            served = json.loads(resp.read())
    finally:
        api.stop()
    assert [r["id"] for r in served["jobs"]] == [r["id"] for r in runs[-20:]]
    assert c.bed.admin.password not in json.dumps(served)


def _watch(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "repman.cli", "--config", str(config), "watch", "--no-api"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True)


def test_job_cut_by_watcher_kill9_is_reported_interrupted_and_scheduling_resumes(cluster_factory, tmp_path):
    c = cluster_factory(count=2)
    section = raw_section(c, **{"monitoring-ticker": 0.2, "monitoring-scheduler": True,
                                "scheduler-db-servers-physical-backup-cron": "*/2 * * * * *",
                                "scheduler-db-servers-logical-backup-cron": "0 0 0 1 1 *",
                                "backup-keep-last": 100})
    config = tmp_path / "repman.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"test": section}}))
    store = store_for(load_cluster("test", section))
    first = _watch(config, tmp_path / "watch.log")
    try:
        from repman.backup.catalog import Catalog
        catalog = Catalog.at(store.dir)
        # Kill while the backup itself runs (its catalog entry written, mariadb-backup streaming).
        runs = wait_until(_jobs_when(store, lambda rs: any(r["status"] == "running" for r in rs)
                                     and any(b.status == "running" for b in catalog.load())),
                          30, "a running backup")
        victim = next(r for r in runs if r["status"] == "running")
        os.killpg(first.pid, signal.SIGKILL)              # the watcher and its mariadb-backup die together
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
    second = _watch(config, tmp_path / "watch.log")
    try:
        runs = wait_until(_jobs_when(store, lambda rs: any(r["id"] == victim["id"] and r["status"] == "interrupted"
                                                           for r in rs)
                                     and any(r["status"] == "ok" and r["started_at"] > victim["started_at"]
                                             for r in rs)),
                          40, "the interrupted run reported and a new run done")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
    assert "watcher" in next(r for r in runs if r["id"] == victim["id"])["sentence"]
    assert "interrupted by a watcher restart" in (tmp_path / "watch.log").read_text()
    # The catalog tells the same story for the backup the dead watcher was taking.
    statuses = [b.status for b in Catalog.at(store.dir).load()]
    assert "interrupted" in statuses and "ok" in statuses, statuses
    out = subprocess.run([sys.executable, "-m", "repman.cli", "--config", str(config), "status", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert any(j["status"] == "interrupted" for j in json.loads(out.stdout)["jobs"])


def test_watcher_archives_binlogs_and_follows_a_switchover(cluster_factory):
    from repman.backup.binlogs import BinlogArchive, sequence_problems
    from repman.backup.settings import BackupSettings
    from repman.watcher.switchover import switchover
    from testkit.backup import wait_archived

    c = cluster_factory(count=2, preferred=0)
    cfg = load_cluster("test", raw_section(c, **{"monitoring-ticker": 0.2, "backup-binlogs": True}))
    watcher = Watcher.for_clusters([cfg])
    watcher.start()
    try:
        w = c.writer(pause=0.001).start()
        try:
            w.wait_acks(200)
            res = switchover(c.cfg, c.store, c.log, to=c.servers[1])
            assert res.ok, res.sentence
            w.wait_acks(200)
        finally:
            w.stop()
        archive = BinlogArchive(BackupSettings.from_cluster(cfg).binlogs_dir)
        wait_archived(archive, c.var(c.servers[1], "gtid_binlog_pos"))
    finally:
        watcher.stop()
    segments = archive.segments()
    assert [s.server for s in segments] == [c.servers[0].url, c.servers[1].url], segments
    txns = [t for _, t in archive.transactions()]
    assert txns[0].seq == 1 and sequence_problems(txns) == []
    assert not any(p.name == "mariadb-binlog" for p in _children()), "the copier outlived the watcher"


def _children():
    """Processes whose parent is this test process."""
    me = os.getpid()
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == me and rest[0] != "Z":
            out.append(type("P", (), {"name": name, "pid": int(pid)}))
    return out
