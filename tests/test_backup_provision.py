"""The Pulumi layer's side of backups, through the real dynamic providers: the watcher provider
initialises the restic repository; the local node provider creates nodes restored from another
cluster's backup and binlog archive (prov-db-restore-from), which then bootstrap into a cluster."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from components.providers.local_node import LocalNodeProvider
from repman.backup.binlogs import ArchiverThread
from repman.backup.provision import ensure_repositories
from repman.backup.take import take_backup
from repman.bootstrap import BootstrapRequest, bootstrap
from repman.db import Credential, ServerAddress
from repman.gtid import GtidPosition
from repman.local.ports import free_port_block
from repman.local.testbed import ADMIN
from repman.watcher.config import load_config
from testkit.backup import exact, wait_archived
from testkit.cluster import raw_section
from testkit.env import needs_mariadb
from testkit.polling import wait_until

NEW_ADMIN = Credential("repman", "new-cluster-admin-pw")


@pytest.mark.skipif(shutil.which("restic") is None, reason="restic not installed")
def test_restic_repository_is_initialised_once(tmp_path):
    (tmp_path / "pw").write_text("pw-for-restic")
    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump({"clusters": {"c1": {
        "db-servers-hosts": ["127.0.0.1:1"], "db-servers-credential": "a:b", "replication-credential": "r:s",
        "monitoring-datadir": str(tmp_path / "state"), "backup-restic": True,
        "backup-restic-repository": str(tmp_path / "repo"), "backup-restic-password": {"file": str(tmp_path / "pw")},
    }}}))
    wc = load_config(cfg)
    assert ensure_repositories(wc) == [f"restic {tmp_path / 'repo'}"]
    assert (tmp_path / "repo" / "config").is_file()
    assert ensure_repositories(wc) == []          # idempotent: never re-initialised
    ok = subprocess.run(["restic", "--repo", str(tmp_path / "repo"), "--password-file", str(tmp_path / "pw"),
                         "cat", "config"], capture_output=True)
    assert ok.returncode == 0


@needs_mariadb
@pytest.mark.slow
def test_new_cluster_created_from_backup_and_archive_by_the_node_provider(cluster_factory, tmp_path):
    c = cluster_factory(count=2)
    config = tmp_path / "source.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"test": raw_section(c)}}))
    archiver = ArchiverThread(c.cfg, interval=0.2).start()
    provider = LocalNodeProvider()
    created = []
    try:
        w = c.writer("w1", pause=0.001).start()
        try:
            w.wait_acks(200)
            take_backup(c.cfg, "physical")
            w.wait_acks(200)
        finally:
            w.stop()
        end = c.var(c.primary(), "gtid_binlog_pos")
        wait_archived(archiver.archiver.archive, end)
        archiver.stop()
        for i in (1, 2):
            port = free_port_block(1)
            props = {"base_dir": str(tmp_path / f"new{i}"), "server_id": 10 + i, "port": port, "host": "127.0.0.1",
                     "plan": "x1.tiny", "tags": ["gtidstrict", "row", "readonly", "smallredolog"],
                     "admin_user": NEW_ADMIN.user, "admin_password": NEW_ADMIN.password, "max_connections": 200,
                     "keep_data": False, "provider_version": "1", "restore": {"from": str(config)}}
            res = provider.create(dict(props))
            created.append((res.id, res.outs))
            assert res.outs["pid"] > 0
        servers = [ServerAddress("127.0.0.1", int(o["port"])) for _, o in created]
        done = bootstrap(BootstrapRequest(servers=servers, admin=NEW_ADMIN, replication=c.bed.replication,
                                          monitoring=c.bed.monitoring, preferred_master=servers[0]))
        assert done.primary == servers[0] and done.replicas == [servers[1]]
        from repman.db import connect, query
        for addr in servers:
            with connect(addr, NEW_ADMIN) as conn:
                pos = query(conn, "SELECT @@GLOBAL.gtid_current_pos AS g")[0]["g"]
            assert GtidPosition.parse(pos).contains(GtidPosition.parse(end)), (addr, pos, end)
        # Every acknowledged row of the source, on both new nodes.
        c.bed.admin = NEW_ADMIN
        try:
            def all_exact() -> bool:
                for addr in servers:
                    exact(c, addr, w)
                return True

            wait_until(all_exact, timeout=30, what="every acknowledged row on both new nodes", every=0.2,
                       ignore=(AssertionError,))
        finally:
            c.bed.admin = ADMIN   # the source cluster's own admin again (its teardown)
    finally:
        archiver.stop()
        for rid, outs in created:
            provider.delete(rid, outs)


@pytest.mark.skipif(shutil.which("restic") is None, reason="restic not installed")
def test_stack_backup_keys_reach_the_watcher_and_its_provider_initialises_restic(tmp_path):
    """Stack keys -> watcher config (the restic password as a 0600 secret file, never in the YAML)
    -> the real local watcher provider runs restic init."""
    from components.providers.local_watcher import LocalWatcherProvider
    from repman.local.watcher import WatcherFiles
    from repman.spec import load_cluster_spec
    from repman.watcher_yaml import dump, file_ref, render_watcher_config, secret_values

    spec = load_cluster_spec({
        "repman:db-servers-credential": "repman:b-admin-pw", "repman:replication-credential": "repl:b-repl-pw",
        "repman:backup-restic": "true", "repman:backup-restic-repository": str(tmp_path / "repo"),
        "repman:backup-restic-password": "b-restic-pw", "repman:monitoring-scheduler": "true",
        "repman:scheduler-db-servers-physical-backup-cron": "0 0 3 * * *",
    })
    files = WatcherFiles(tmp_path / "w")
    config = render_watcher_config(spec, [f"127.0.0.1:{free_port_block(1)}"], file_ref(files.secrets_dir),
                                   state_dir=str(files.state_dir))
    assert "b-restic-pw" not in dump(config)
    assert secret_values(spec)["backup-restic-password"] == "b-restic-pw"
    props = {"base_dir": str(files.base), "cluster": spec.name, "config": config, "secrets": secret_values(spec),
             "api": {}, "provider_version": "1", "keep_state": False}
    provider = LocalWatcherProvider()
    created = provider.create(dict(props))
    try:
        assert (tmp_path / "repo" / "config").is_file()
        assert "b-restic-pw" not in repr(created.outs)
        ok = subprocess.run(["restic", "--repo", str(tmp_path / "repo"), "--password-file",
                             str(files.secrets_dir / "backup-restic-password"), "cat", "config"], capture_output=True)
        assert ok.returncode == 0, ok.stderr
    finally:
        provider.delete(created.id, created.outs)
