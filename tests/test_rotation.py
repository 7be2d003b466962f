"""`repman rotate-passwords` on a live cluster with a writer running (issue 15, point 5).

Real mariadbd nodes, the real command in a subprocess, the recording writer
(tests/writer.py) inserting all along: no acknowledged write lost, none
unexpected, no errant GTID, no write gap, every replica replicating with the new
password, the old one refused, the secret files replaced, and a watcher config
loaded before the rotation re-reading the new password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
import yaml

from repman.db import Credential, connect
from repman.watcher.config import load_config
from testkit.env import needs_mariadb

pytestmark = [needs_mariadb, pytest.mark.slow]


def _config(c, tmp_path: Path) -> tuple[Path, Path]:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    repl_file = secrets / "replication-credential"
    repl_file.write_text(f"{c.bed.replication.user}:{c.bed.replication.password}\n")
    repl_file.chmod(0o600)
    section = {"db-servers-hosts": [a.url for a in c.servers],
               "db-servers-credential": f"{c.bed.admin.user}:{c.bed.admin.password}",
               "replication-credential": {"file": str(repl_file)},
               "monitoring-datadir": str(tmp_path / "state")}
    path = tmp_path / "repman.yaml"
    path.write_text(yaml.safe_dump({"clusters": {"c1": section}}))
    return path, repl_file


def _logs_in(c, addr, cred: Credential) -> bool:
    try:
        connect(addr, cred, timeout=3).close()
        return True
    except pymysql.err.OperationalError:
        return False


@pytest.mark.parametrize("semisync", [False, True], ids=["async", "semisync"])
def test_rotate_passwords_on_a_live_cluster_without_losing_or_stopping_writes(cluster_factory, tmp_path, semisync):
    c = cluster_factory(semisync=semisync)
    path, repl_file = _config(c, tmp_path)
    watcher_cfg = load_config(path).cluster()  # as a running watcher holds it
    mon_file = tmp_path / "secrets" / "monitoring-credential"
    old_repl, old_mon = c.bed.replication, c.bed.monitoring
    w = c.writer(pause=0.002)
    w.start()
    try:
        w.wait_acks(200)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "repman.cli", "--config", str(path), "rotate-passwords", "--json",
             "--monitoring-user", old_mon.user, "--monitoring-secret-file", str(mon_file)],
            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()})
        ended = time.monotonic()
        w.wait_acks(200)
    finally:
        w.stop()
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rotated"] == [old_repl.user, old_mon.user]
    assert sorted(summary["repointed"]) == sorted(a.url for a in c.replicas())

    new_repl = Credential(*repl_file.read_text().strip().split(":", 1))
    new_mon = Credential(*mon_file.read_text().strip().split(":", 1))
    assert new_repl.user == old_repl.user and new_repl.password != old_repl.password
    assert new_mon.password != old_mon.password
    for f in (repl_file, mon_file):
        assert f.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in repl_file.parent.iterdir()) == ["monitoring-credential", "replication-credential"]
    for secret in (new_repl.password, new_mon.password):
        assert secret not in done.stdout and secret not in done.stderr

    primary = c.assert_converged()  # same GTID everywhere (no errant transaction), same checksums
    for addr in c.servers:
        lost, unexpected = w.verify(addr)
        assert lost == set() and unexpected == set(), (addr, lost, unexpected)
    assert w.gaps(started, ended) < 1.0, "the write path must not stop during a rotation"
    for r in c.replicas():
        st = c.sql(r, "SHOW SLAVE STATUS")[0]
        assert st["Master_User"] == old_repl.user and st["Last_IO_Errno"] == 0 and st["Last_SQL_Errno"] == 0
    for addr in c.servers:
        assert _logs_in(c, addr, new_repl) and not _logs_in(c, addr, old_repl)
        assert _logs_in(c, addr, new_mon) and not _logs_in(c, addr, old_mon)
    # the running watcher's config follows the file: its next CHANGE MASTER uses the new password
    assert watcher_cfg.replication.password == new_repl.password
    # replicas reconnect with the new password after a restart of their IO thread
    r = c.replicas()[0]
    c.sql(r, "STOP SLAVE IO_THREAD")
    c.sql(r, "START SLAVE IO_THREAD")
    c.wait_for(lambda: c.sql(r, "SHOW SLAVE STATUS")[0]["Slave_IO_Running"] == "Yes", 20, "IO thread back")
    assert primary == c.primary()


def test_rotate_passwords_refuses_an_inline_secret_and_changes_nothing(cluster_factory, tmp_path):
    c = cluster_factory()
    section = {"db-servers-hosts": [a.url for a in c.servers],
               "db-servers-credential": f"{c.bed.admin.user}:{c.bed.admin.password}",
               "replication-credential": f"{c.bed.replication.user}:{c.bed.replication.password}"}
    path = tmp_path / "inline.yaml"
    path.write_text(yaml.safe_dump({"clusters": {"c1": section}}))
    done = subprocess.run([sys.executable, "-m", "repman.cli", "--config", str(path), "rotate-passwords"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "replication-credential" in done.stderr and "Traceback" not in done.stderr
    assert _logs_in(c, c.primary(), c.bed.replication)


def test_the_stack_changing_the_replication_credential_repoints_replicas_under_writes(cluster_factory):
    """What the Pulumi layer runs when replication-credential changes in the stack: bootstrap again."""
    from repman.bootstrap import BootstrapRequest, bootstrap
    c = cluster_factory()
    new = Credential(c.bed.replication.user, "stack-rotated-pw")
    w = c.writer(pause=0.002)
    w.start()
    try:
        w.wait_acks(100)
        started = time.monotonic()
        result = bootstrap(BootstrapRequest(servers=c.servers, admin=c.bed.admin, replication=new,
                                            monitoring=c.bed.monitoring))
        ended = time.monotonic()
        w.wait_acks(100)
    finally:
        w.stop()
    assert f"created user {new.user} on {result.primary.url}" in result.actions
    assert sorted(a for a in result.actions if a.startswith("attached")) == sorted(
        f"attached {r.url} to {result.primary.url}" for r in result.replicas)
    c.assert_converged()
    for addr in c.servers:
        assert w.verify(addr) == (set(), set())
        assert _logs_in(c, addr, new) and not _logs_in(c, addr, c.bed.replication)
    assert w.gaps(started, ended) < 1.0
