"""kill -9 of the watcher in the middle of a failover, at the worst step, then a new watcher.

A failpoint (``repman.failpoints``) kills ``repman watch`` right after the promotion,
before the new master opens for writes and before the other replica is re-pointed: the
cluster is left with a promoted, still read-only server and a replica following a dead
master. The next watcher must finish that failover, not start another: one failover
counted, one master taking writes, every acknowledged write kept, no errant GTID, and the
old master taken back once it returns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repman.db import connect, query
from testkit.cluster import HACluster, raw_section
from testkit.env import needs_mariadb
from testkit.polling import wait_until

pytestmark = [needs_mariadb, pytest.mark.slow]


def _watch(config: Path, log: Path, failpoints: str = "") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "REPMAN_FAILPOINTS"}
    if failpoints:
        env["REPMAN_FAILPOINTS"] = failpoints
    return subprocess.Popen([sys.executable, "-m", "repman.cli", "--config", str(config), "watch", "--no-api"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True, env=env)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _writable(c: HACluster) -> list[str]:
    out = []
    for addr in c.servers:
        try:
            with connect(addr, c.bed.admin, timeout=1, read_timeout=2) as conn:
                if int(query(conn, "SELECT @@GLOBAL.read_only AS r")[0]["r"]) == 0:
                    out.append(addr.url)
        except Exception:  # noqa: BLE001 - a dead server takes no writes
            continue
    return out


def test_a_watcher_killed_after_the_promotion_is_finished_by_the_next_one(cluster_factory, tmp_path):
    c = cluster_factory(semisync=True)
    old = c.primary()
    section = raw_section(c, **{"monitoring-ticker": 0.3, "semisync": True, "failover-mode": "automatic",
                                "failover-falsepositive-ping-counter": 3})
    config = tmp_path / "repman.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"test": section}}))
    log = tmp_path / "watch.log"
    w = c.writer().start()
    first = _watch(config, log, "failover:after-promote=kill")
    second = None
    try:
        w.wait_acks(200)
        wait_until(lambda: " INFO test: " in log.read_text(), 30, "the first watcher's first decision")
        c.bed.kill(old)
        assert first.wait(60) == -signal.SIGKILL, log.read_text()[-2000:]   # died at the failpoint
        state = c.store.load()
        assert state.failover_count == 1 and len(state.crashes) == 1, state
        promoted = state.crashes[-1].new_master
        assert _writable(c) == []                        # promoted, not yet open: nobody takes writes

        second = _watch(config, log)
        wait_until(lambda: _writable(c) == [promoted], 60, "the next watcher to open the promoted master")
        assert "was promoted by a failover that stopped before opening its writes: finishing it" in log.read_text()
        w.wait_acks(200, 60)
        others = [a for a in c.servers if a != old]
        c.bed.start(old)
        wait_until(lambda: len(_writable(c)) == 1 and _follows_all(c, promoted), 90,
                   "every server to follow the promoted master")
        w.stop()
        c.assert_converged()
        lost, unexpected = w.verify(c.primary())
        assert not lost and not unexpected, (sorted(lost)[:10], sorted(unexpected)[:10])
        state = c.store.load()
        assert state.failover_count == 1 and [r.new_master for r in state.crashes] == [promoted], state
        assert c.primary().url == promoted and len(others) == 2
    finally:
        w.stop()
        _stop(first)
        if second is not None:
            _stop(second)


def _follows_all(c: HACluster, primary: str) -> bool:
    for addr in c.servers:
        if addr.url == primary:
            continue
        try:
            rows = c.sql(addr, "SHOW SLAVE STATUS")
        except Exception:  # noqa: BLE001 - still starting
            return False
        if not rows or f"{rows[0]['Master_Host']}:{rows[0]['Master_Port']}" != primary \
                or rows[0]["Slave_IO_Running"] != "Yes" or rows[0]["Slave_SQL_Running"] != "Yes":
            return False
    return True
