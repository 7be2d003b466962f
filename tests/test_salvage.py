"""Binlog salvage on real mariadbd: an asynchronous master dies holding writes no replica received.

Both replicas' IO threads are stopped while the writer goes on, so the dead
master alone has the last acknowledged inserts. The failover reads its binlog
folder (local backend: the datadir) and applies the missing events to the new
master before it takes writes: the writer's record shows nothing lost, the
returning old master rejoins without an errant GTID, and with the key off the
same situation loses those writes (so the test can fail).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repman.watcher.failover import failover
from repman.watcher.rejoin import rejoin
from repman.watcher.salvage import binlog_dirs
from testkit.cluster import HACluster
from testkit.env import needs_mariadb
from testkit.sshd import LocalSshd

pytestmark = [needs_mariadb, pytest.mark.slow]

TAGS = ("gtidstrict", "row", "readonly", "noquerycache", "smallredolog")


def _dirs(c: HACluster) -> list[str]:
    return [f"{a.url}={c.bed.node(a).paths.datadir}" for a in c.servers]


def _lagging_kill(c: HACluster):
    """Writer on, replicas' IO threads stopped, 150 more acks on the master only, kill -9."""
    old = c.primary()
    w = c.writer(pause=0.0).start()
    w.wait_acks(100)
    pos = c.var(old, "gtid_binlog_pos")
    for r in c.replicas():
        assert c.sql(r, "SELECT MASTER_GTID_WAIT(%s, 30) AS w", (pos,))[0]["w"] == 0
    for r in c.replicas():
        c.sql(r, "STOP SLAVE IO_THREAD")
    w.wait_acks(150)
    c.bed.kill(old)
    return old, w


def test_failover_salvages_the_dead_masters_binlog_events(cluster_factory):
    c = cluster_factory(tags=TAGS)
    c.set(failover_salvage_binlog_dirs=_dirs(c))
    assert binlog_dirs(c.cfg)[c.primary().url].endswith("/data")
    old, w = _lagging_kill(c)
    try:
        res = failover(c.cfg, c.store, c.log)
        assert res.ok, res.sentence
        assert any("salvaged" in line and "transaction(s) only" in line for line in c.lines), "\n".join(c.lines)
        w.wait_acks(50)
    finally:
        w.stop()
    new = c.primary()
    lost, unexpected = w.verify(new)
    assert not lost, f"acknowledged writes lost: {sorted(lost)[:10]} of {len(lost)}"
    assert not unexpected, sorted(unexpected)[:10]
    # The returning old master's history is contained in the new master's: it rejoins by GTID.
    c.bed.start(old)
    back = rejoin(c.cfg, c.store, old, c.log)
    assert back.ok, back.sentence
    c.assert_converged()
    lost, unexpected = w.verify(old)
    assert not lost and not unexpected


def test_without_salvage_the_same_crash_loses_acknowledged_writes(cluster_factory):
    c = cluster_factory(tags=TAGS)
    c.set(failover_salvage_binlog_dirs=_dirs(c), failover_salvage_binlog=False)
    old, w = _lagging_kill(c)
    try:
        res = failover(c.cfg, c.store, c.log)
        assert res.ok, res.sentence
        assert any("binlog salvage off" in line for line in c.lines), c.lines
    finally:
        w.stop()
    lost, _ = w.verify(c.primary())
    assert len(lost) >= 100, f"expected the master-only writes to be lost without salvage, lost {len(lost)}"


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists() or shutil.which("ssh") is None,
                    reason="openssh-server / ssh client not installed")
def test_salvage_over_ssh_reads_the_binlogs_on_the_dead_masters_host(cluster_factory, tmp_path):
    """SSH backend path: a private sshd on 127.0.0.1 stands for the dead master's host."""
    sshd = LocalSshd.start(tmp_path / "ssh")
    try:
        c = cluster_factory(tags=TAGS)
        c.set(failover_salvage_binlog_dirs=_dirs(c), failover_salvage_ssh_user="root",
              failover_salvage_ssh_options=f"-p {sshd.port} -i {sshd.key} -o StrictHostKeyChecking=no "
                                            "-o UserKnownHostsFile=/dev/null")
        old, w = _lagging_kill(c)
        logins = (sshd.folder / "sshd.log").read_text().count("Accepted publickey")
        try:
            res = failover(c.cfg, c.store, c.log)
            assert res.ok, res.sentence
            assert any("salvaged" in line for line in c.lines), "\n".join(c.lines)
        finally:
            w.stop()
        # The index and the binlogs were read through the sshd (two sessions), not from the local disk.
        assert (sshd.folder / "sshd.log").read_text().count("Accepted publickey") >= logins + 2
        lost, unexpected = w.verify(c.primary())
        assert not lost and not unexpected, (sorted(lost)[:10], sorted(unexpected)[:10])
    finally:
        sshd.close()


def test_a_salvage_that_hangs_is_abandoned_at_its_timeout(cluster_factory):
    """The dead master's host accepts TCP but never answers SSH: the failover goes on in time."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)                      # the kernel completes handshakes; nobody ever speaks
    try:
        c = cluster_factory(tags=TAGS)
        c.set(failover_salvage_binlog_dirs=_dirs(c), failover_salvage_ssh_user="root",
              failover_salvage_timeout=1.0,
              failover_salvage_ssh_options=f"-p {silent.getsockname()[1]} -o ConnectTimeout=30")
        old, w = _lagging_kill(c)
        try:
            t0 = time.monotonic()
            res = failover(c.cfg, c.store, c.log)
            took = time.monotonic() - t0
        finally:
            w.stop()
        assert res.ok, res.sentence
        assert any("abandoned after failover-salvage-timeout 1s" in line for line in c.lines), "\n".join(c.lines)
        assert took < 6, f"failover took {took:.1f}s with a 1 s salvage bound"
        assert c.var(c.primary(), "read_only") == "0"
    finally:
        silent.close()
