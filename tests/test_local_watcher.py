"""The watcher config the provisioner renders, and the detached local watcher process."""

from __future__ import annotations

import os
import signal
import stat
import tempfile
from pathlib import Path

import pytest
import yaml

from components.providers.local_watcher import LocalWatcherProvider
from repman.local.mariadb import pid_alive
from repman.local.ports import free_port_block
from repman.local.watcher import WatcherFiles, running_pid
from repman.spec import load_cluster_spec
from repman.watcher.config import load_config
from repman.watcher_yaml import dump, env_ref, file_ref, render_watcher_config, secret_values
from testkit.env import needs_mariadb
from testkit.local_watcher import SPEC, watcher_props
from testkit.polling import wait_until


def test_rendered_config_is_valid_for_the_watcher_and_holds_no_secret(tmp_path):
    spec = load_cluster_spec(SPEC)
    servers = ["127.0.0.1:3310", "127.0.0.1:3311", "127.0.0.1:3312"]
    doc = render_watcher_config(spec, servers, file_ref(tmp_path / "secrets"), state_dir=str(tmp_path / "st"))
    section = doc["clusters"]["cluster1"]
    assert section["db-servers-prefered-master"] == "127.0.0.1:3311"
    assert section["semisync"] is True and section["failover-mode"] == "automatic"
    assert section["proxysql-password"] == {"file": str(tmp_path / "secrets" / "proxysql-password")}
    text = dump(doc)
    assert not any(p in text for p in ("w-admin-pw", "w-repl-pw", "w-proxysql-pw"))
    secrets = secret_values(spec)
    assert secrets == {"db-servers-credential": "repman:w-admin-pw", "replication-credential": "repl:w-repl-pw",
                       "proxysql-password": "w-proxysql-pw"}
    (tmp_path / "secrets").mkdir()
    for name, value in secrets.items():
        (tmp_path / "secrets" / name).write_text(value)
    (tmp_path / "repman.yaml").write_text(text)
    cfg = load_config(tmp_path / "repman.yaml").cluster("cluster1")
    assert cfg.admin.password == "w-admin-pw" and len(cfg.servers) == 3
    exported = yaml.safe_load(dump(render_watcher_config(spec, servers, env_ref)))
    assert exported["clusters"]["cluster1"]["db-servers-credential"] == {"env": "REPMAN_DB_SERVERS_CREDENTIAL"}


@needs_mariadb
def test_local_watcher_lifecycle(testbed):
    base = Path(tempfile.mkdtemp(prefix="repman-w-"))
    testbed.bootstrap()
    props = watcher_props(base, [a.url for a in testbed.addresses], free_port_block(1))
    provider = LocalWatcherProvider()
    created = provider.create(dict(props))
    outs = created.outs
    try:
        files = WatcherFiles(base)
        pid = running_pid(files)
        assert pid and pid == outs["pid"]
        assert "secrets" not in outs and "w-admin-pw" not in repr(outs)
        for f in files.secrets_dir.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert outs["api_url"] == f"http://127.0.0.1:{props['api']['api-port']}"
        assert provider.diff(created.id, outs, dict(props)).changes is False

        os.kill(pid, signal.SIGKILL)  # died: the next up restarts it
        wait_until(lambda: not pid_alive(pid), timeout=10, what=f"pid {pid} to exit", every=0.05)
        assert provider.diff(created.id, outs, dict(props)).changes is False  # pure: state says running
        outs = provider.read(created.id, outs).outs                             # refresh records the death
        assert provider.diff(created.id, outs, dict(props)).changes is True
        outs = provider.update(created.id, outs, dict(props)).outs
        second = running_pid(files)
        assert second and second != pid

        rotated = dict(props, secrets=dict(props["secrets"], **{"replication-credential": "repl:rotated"}))
        assert provider.diff(created.id, outs, rotated).changes is True
        outs = provider.update(created.id, outs, rotated).outs
        assert (files.secrets_dir / "replication-credential").read_text() == "repl:rotated"
        assert running_pid(files) not in (None, second)  # restarted to read the new secret
        assert provider.diff(created.id, outs, rotated).changes is False
    finally:
        provider.delete(created.id, outs)
    assert running_pid(WatcherFiles(base)) is None
    assert not WatcherFiles(base).secrets_dir.exists()      # no secret outlives the watcher
    assert WatcherFiles(base).config.exists()               # keep_state (default): state kept


@needs_mariadb
def test_deleted_watcher_without_kept_data_leaves_no_state(testbed):
    base = Path(tempfile.mkdtemp(prefix="repman-w-"))
    testbed.bootstrap()
    props = watcher_props(base, [a.url for a in testbed.addresses], free_port_block(1)) | {"keep_state": False}
    provider = LocalWatcherProvider()
    created = provider.create(dict(props))
    files = WatcherFiles(base)
    files.state_dir.mkdir(parents=True, exist_ok=True)
    (files.state_dir / "marker").write_text("crash records live here")
    provider.delete(created.id, created.outs)
    assert running_pid(files) is None
    assert not base.exists()


def test_bad_watcher_config_is_refused_before_starting(tmp_path):
    props = watcher_props(tmp_path / "w", ["127.0.0.1:3310", "127.0.0.1:3311"], free_port_block(1))
    props["config"]["clusters"]["cluster1"]["failover-mode"] = "sometimes"
    with pytest.raises(Exception, match="failover-mode"):
        LocalWatcherProvider().create(props)
    assert running_pid(WatcherFiles(tmp_path / "w")) is None
