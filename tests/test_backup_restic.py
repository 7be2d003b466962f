"""Backups into restic over SFTP (a real sshd) and on a local path: encrypted, deduplicated,
checked, restored by a throw-away mariadbd; retention; no secret in any process's argv or
environment while tools run."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from repman.backup.catalog import Catalog
from repman.backup.repository import ResticRepository, open_repository
from repman.backup.restore import restore
from repman.backup.settings import BackupSettings
from repman.backup.take import take_backup
from repman.db import ServerAddress
from repman.gtid import GtidPosition
from repman.lab.writer import SCHEMA, TABLE
from repman.local.mariadb import LocalServerPaths, stop_server
from repman.local.ports import free_port_block
from repman.watcher.config import load_cluster
from testkit.env import needs_mariadb
from testkit.sshd import HAVE_SSHD, LocalSshd

HAVE_RESTIC = shutil.which("restic") is not None
pytestmark = [needs_mariadb, pytest.mark.slow,
              pytest.mark.skipif(not HAVE_RESTIC, reason="restic not installed")]
MARKER = "plaintext-marker-7f3a91"
RESTIC_PASSWORD = "restic-Secret-4411"


def _with_backup_keys(c, **keys) -> None:
    raw = {k: v for k, v in c.cfg.values.items() if v not in (None, "", [])}
    raw["db-servers-hosts"] = [a.url for a in c.cfg.servers]
    raw["db-servers-credential"] = f"{c.bed.admin.user}:{c.bed.admin.password}"
    raw["replication-credential"] = f"{c.bed.replication.user}:{c.bed.replication.password}"
    raw.update(keys)
    c.cfg = load_cluster("test", {k: (str(v) if hasattr(v, "url") else v) for k, v in raw.items()
                                  if k in keys or k in ("db-servers-hosts", "db-servers-credential",
                                                        "replication-credential", "monitoring-datadir")})


class SecretSpy:
    """Reads argv and environment of every process this test starts (its descendants) while it
    runs, looking for secrets; other sessions' processes on the machine are not ours to judge."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s.encode() for s in secrets]
        self.found: list[str] = []
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == me or not _descends_from(int(pid), me):
                    continue
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                    env = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    continue
                name = argv.split(b"\0")[0].rsplit(b"/", 1)[-1].decode(errors="replace")
                self.seen.add(name)
                for s in self.secrets:
                    if s in argv or s in env:
                        self.found.append(f"{name} ({pid})")
            time.sleep(0.005)

    def __enter__(self) -> SecretSpy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(20):
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


def _repo_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _contains(path: Path, needle: bytes) -> bool:
    return any(needle in f.read_bytes() for f in path.rglob("*") if f.is_file())


@pytest.mark.skipif(not HAVE_SSHD, reason="sshd (openssh-server) not installed")
def test_restic_over_sftp_encrypted_deduplicated_checked_restored(cluster_factory, tmp_path):
    c = cluster_factory(count=2)
    sshd = LocalSshd.start(tmp_path / "sshd")
    restored = tmp_path / "restored"
    try:
        secret_file = tmp_path / "restic.pass"
        secret_file.write_text(RESTIC_PASSWORD + "\n")
        secret_file.chmod(0o600)
        repo_dir = tmp_path / "sftp-repo"
        _with_backup_keys(c, **{
            "backup-restic": True, "backup-restic-repository": f"sftp:root@127.0.0.1:{repo_dir}",
            "backup-restic-password": {"file": str(secret_file)},
            "backup-restic-sftp-command": sshd.sftp_command, "backup-keep-last": 5,
        })
        primary = c.primary()
        c.sql(primary, f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
        c.sql(primary, f"CREATE TABLE {SCHEMA}.notes (id INT PRIMARY KEY, body TEXT)")
        c.sql(primary, f"INSERT INTO {SCHEMA}.notes VALUES (1, REPEAT('{MARKER} ', 2000))")
        w = c.writer(pause=0.001).start()
        try:
            w.wait_acks(200)
            before_backup = {a.id for a in w.acked}
            with SecretSpy([RESTIC_PASSWORD, c.bed.admin.password]) as spy:
                first = take_backup(c.cfg, "physical")
            w.wait_acks(50)
        finally:
            w.stop()
        assert spy.found == [], f"a secret was visible in argv/environment of {spy.found}"
        assert {"restic", "mariadb-backup"} <= spy.seen, spy.seen   # the spy did see the tools run
        assert first.status == "ok" and first.location and first.gtid
        assert repo_dir.is_dir() and not _contains(repo_dir, MARKER.encode()), "repository is not encrypted"
        size_after_first = _repo_bytes(repo_dir)
        second = take_backup(c.cfg, "physical")       # same data, a few more rows: deduplicated
        growth = _repo_bytes(repo_dir) - size_after_first
        assert growth < 0.3 * second.size, f"repository grew {growth} bytes for a {second.size}-byte backup"
        repo = open_repository(BackupSettings.from_cluster(c.cfg))
        assert "no errors were found" in repo.check()

        # The backup is prepared and opened by a throw-away mariadbd, at exactly the backup's GTID.
        addr = ServerAddress("127.0.0.1", free_port_block(1))
        res = restore(c.cfg, addr, restored, to_gtid=first.gtid, backup_id=first.id)
        assert GtidPosition.parse(res.gtid) == GtidPosition.parse(first.gtid) and res.replayed == 0
        present = {int(r["id"]) for r in c.sql(addr, f"SELECT id FROM {TABLE}")}
        assert before_backup <= present, "rows acknowledged before the backup started are missing"
        assert present <= {a.id for a in w.acked} | w.maybe
        assert c.sql(addr, f"SELECT COUNT(*) AS n FROM {SCHEMA}.notes")[0]["n"] == 1
    finally:
        stop_server(LocalServerPaths(restored))
        sshd.close()


def test_retention_forgets_restic_snapshots_and_catalog_entries(cluster_factory, tmp_path):
    c = cluster_factory(count=1)
    secret_file = tmp_path / "restic.pass"
    secret_file.write_text(RESTIC_PASSWORD)
    _with_backup_keys(c, **{
        "backup-restic": True, "backup-restic-repository": str(tmp_path / "repo"),
        "backup-restic-password": {"file": str(secret_file)},
        "backup-keep-hourly": 1, "backup-keep-daily": 0, "backup-keep-weekly": 0, "backup-keep-monthly": 0,
    })
    ids = [take_backup(c.cfg, "logical").id for _ in range(3)]
    repo = open_repository(BackupSettings.from_cluster(c.cfg))
    assert isinstance(repo, ResticRepository)
    snaps = repo.snapshots()
    assert len(snaps) == 1 and f"id={ids[-1]}" in snaps[0]["tags"]
    status = {r.id: r.status for r in Catalog.at(c.cfg.state_dir).load()}
    assert status == {ids[0]: "removed", ids[1]: "removed", ids[2]: "ok"}
    assert "no errors were found" in repo.check()


@pytest.mark.skipif(shutil.which("mydumper") is None, reason="mydumper not installed")
def test_mydumper_logical_backup_into_a_directory_and_one_backup_of_a_kind_at_a_time(cluster_factory, tmp_path):
    c = cluster_factory(count=2)
    _with_backup_keys(c, **{"backup-logical-type": "mydumper", "backup-dir": str(tmp_path / "dir"),
                            "backup-keep-last": 5})
    w = c.writer(pause=0.001).start()
    try:
        w.wait_acks(100)
        record = take_backup(c.cfg, "logical")
    finally:
        w.stop()
    assert record.status == "ok" and record.tool == "mydumper" and record.gtid and record.size > 0
    files = {p.name for p in (tmp_path / "dir" / record.id).rglob("*")}
    assert "metadata" in files and any(f.startswith("repman_test.writes") for f in files), files
    # Another process holding the cluster's logical-backup lock: refused with one sentence.
    import fcntl
    fd = os.open(c.cfg.state_dir / "backup-logical.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        from repman.backup.take import BackupError
        with pytest.raises(BackupError, match="already running"):
            take_backup(c.cfg, "logical")
    finally:
        os.close(fd)
