"""The salvage keys: validated like every watcher key, rendered by the local and SSH backends."""

from __future__ import annotations

import pytest

from repman.errors import ConfigError
from repman.watcher.config import load_cluster
from repman.watcher.salvage import binlog_dirs

BASE = {"db-servers-hosts": ["127.0.0.1:3310", "127.0.0.1:3311"], "db-servers-credential": "u:p",
        "replication-credential": "r:s"}


def test_binlog_dirs_map_each_server_to_its_folder():
    cfg = load_cluster("c", {**BASE, "failover-salvage-binlog-dirs": [
        "127.0.0.1:3310=/srv/db1/data", "127.0.0.1:3311 = /srv/db2/data", "junk-without-folder"]})
    assert binlog_dirs(cfg) == {"127.0.0.1:3310": "/srv/db1/data", "127.0.0.1:3311": "/srv/db2/data"}
    assert cfg["failover-salvage-binlog"] is True and cfg["failover-salvage-timeout"] == 10.0


@pytest.mark.parametrize("key,value", [("failover-salvage-timeout", 0), ("failover-salvage-binlog", "perhaps")])
def test_bad_salvage_values_name_the_key(key, value):
    with pytest.raises(ConfigError) as err:
        load_cluster("c", {**BASE, key: value})
    assert key in str(err.value)


def test_local_backend_renders_every_datadir(tmp_path):
    pytest.importorskip("pulumi")
    from components.backends.local import LocalBackend
    from repman.spec import NodeSpec

    class Spec:
        name, db_host, state_dir = "c1", "127.0.0.1", tmp_path
        nodes = (NodeSpec(1, "c1-db1", 1, 3310), NodeSpec(2, "c1-db2", 2, 3311))

    dirs = LocalBackend(Spec()).salvage_settings()["failover-salvage-binlog-dirs"]
    assert dirs == [f"127.0.0.1:3310={tmp_path}/c1/db1/data", f"127.0.0.1:3311={tmp_path}/c1/db2/data"]
