"""`repman config import`: replication-manager's config.toml ([Default], cluster sections,
include directories) -> watcher YAML loaded by our loader + stack files valid for Pulumi config."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from repman.config_import import import_repman_config, write_outputs
from repman.db import Credential, ServerAddress
from repman.errors import ConfigError
from repman.routing.keys import ROUTING_KEYS
from repman.spec import PROVISIONING_KEYS, load_cluster_spec
from repman.watcher.config import load_config
from repman.watcher.keys import WATCHER_KEYS

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "import-test-passphrase"

# A configuration as repman documents it (its etc/ samples): a [Default] section inherited by
# every cluster, an include directory, repman's comma-separated lists, its older aliases,
# keys we ignore and one we do not know.
MAIN = """\
[Default]
include = "cluster.d"
monitoring-ticker = 1
failover-mode = "automatic"
failover-falsepositive-heartbeat-timeout = 3
switchover-wait-route-change = 2
graphite-metrics = true
mail-to = "dba@example.com"
http-server = true
log-file = "/var/log/replication-manager.log"

[MasterSlaveHaproxy]
title = "MasterSlaveHaproxy"
prov-orchestrator = "local"
db-servers-hosts = "127.0.0.1:3310,127.0.0.1:3311,127.0.0.1"
db-servers-prefered-master = "127.0.0.1:3311,127.0.0.1:3310"
db-servers-credential = "root:mariadb"
db-servers-connect-timeout = 1
replication-credential = "repl:repl-pw"
prov-db-tags = "semisync,row,innodb,noquerycache,threadpool,slow,pfs,docker,linux,readonly,\
diskmonitor,sqlerror,compressbinlog"
prov-proxy-tags = "masterslave,docker,linux,noreadwritesplit"
haproxy = true
haproxy-write-port = 3303
haproxy-read-port = 3302
haproxy-servers = "192.168.100.50"
failover-limitt = 3
"""

INCLUDED = """\
[Cluster_2]
hosts = "db1,db2"
user = "admin:admin-pw"
rpluser = "repl:rpw"
prefmaster = "db2"
wait-kill = 3000
maxdelay = 20
failover-mode = "manual"
"""


def write_config(tmp_path: Path) -> Path:
    (tmp_path / "cluster.d").mkdir()
    (tmp_path / "cluster.d" / "cluster2.toml").write_text(INCLUDED)
    path = tmp_path / "config.toml"
    path.write_text(MAIN)
    return path


def stack_valid(project: Path, stack_file: Path, name: str) -> dict:
    """The stack passes Pulumi config merging (types, secrets) and our spec validation."""
    from components.pulumi_config import load_stack_config

    (project / "stacks").mkdir(exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    if stack_file.parent != project / "stacks":
        shutil.copy(stack_file, project / "stacks" / stack_file.name)
    merged = load_stack_config(project, name, env={"PULUMI_CONFIG_PASSPHRASE": PASSPHRASE})
    spec = load_cluster_spec(merged, project_dir=project)
    return {"merged": merged, "spec": spec}


def test_import_maps_defaults_includes_aliases_and_warns_once_per_unknown_key(tmp_path):
    result = import_repman_config(write_config(tmp_path))
    assert set(result.clusters) == {"MasterSlaveHaproxy", "Cluster_2"}
    a, b = result.clusters["MasterSlaveHaproxy"], result.clusters["Cluster_2"]
    assert a.watcher["monitoring-ticker"] == 1 and b.watcher["failover-mode"] == "manual"  # section wins
    assert b.watcher["db-servers-hosts"] == "db1,db2" and b.watcher["switchover-wait-kill"] == 3000
    assert b.credentials == {"db-servers-credential": "admin:admin-pw", "replication-credential": "repl:rpw"}
    w = result.warnings
    assert "[MasterSlaveHaproxy] failover-limitt: unknown key, ignored: did you mean failover-limit?" in w
    assert any(l.startswith("[MasterSlaveHaproxy] graphite-metrics: ignored: metrics export") for l in w)
    assert any(l.startswith("[Cluster_2] hosts: imported as db-servers-hosts (repman's alias)") for l in w)
    assert all("\n" not in line for line in w)
    assert a.stack["prov-db-tags"][-1] == "compressbinlog" and a.stack["prov-db-nodes"] == 3
    assert a.stack["db-servers-prefered-master"] == "127.0.0.1:3311"


def test_outputs_load_with_the_watcher_loader_and_pass_pulumi_config(tmp_path):
    result = import_repman_config(write_config(tmp_path))
    written = write_outputs(result, tmp_path / "out", tmp_path / "proj" / "stacks", PASSPHRASE)
    wc = load_config(tmp_path / "out" / "repman.yaml")
    a = wc.cluster("MasterSlaveHaproxy")
    assert a.servers == [ServerAddress("127.0.0.1", 3310), ServerAddress("127.0.0.1", 3311),
                         ServerAddress("127.0.0.1", 3306)]          # repman's default port
    assert a["db-servers-prefered-master"] == [ServerAddress("127.0.0.1", 3311), ServerAddress("127.0.0.1", 3310)]
    assert a["switchover-wait-route-change"] == 2.0 and a["haproxy-servers"] == ["192.168.100.50"]
    assert a.admin == Credential("root", "mariadb")
    assert wc.cluster("Cluster_2")["failover-max-slave-delay"] == 20.0
    # no password in the YAML or the stack files; the secret files are private
    for path in written:
        if "secrets" in path.parts:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        else:
            assert "mariadb" not in path.read_text().replace("mariadb-", "") and "admin-pw" not in path.read_text()
    checked = stack_valid(tmp_path / "proj", tmp_path / "proj/stacks/Pulumi.masterslavehaproxy.yaml",
                          "masterslavehaproxy")
    spec = checked["spec"]
    assert spec.name == "masterslavehaproxy" and spec.node_count == 3 and spec.admin.password == "mariadb"
    assert "diskmonitor" in spec.db_tags and spec.setting("haproxy-write-port") == 3303
    two = stack_valid(tmp_path / "proj", tmp_path / "proj/stacks/Pulumi.cluster-2.yaml", "cluster-2")["spec"]
    assert two.node_count == 2 and two.setting("switchover-wait-kill") == 3000


def _toml(value) -> str:
    """repman writes lists as comma-separated strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(",".join(value) if isinstance(value, list) else value)


def _sample(key) -> object | None:
    """A valid TOML value for a key: its default when TOML can hold it, else a sample."""
    if key.kind == "credential":
        return f"{key.name.split('-')[0]}:pw"
    if key.default not in (None, [], ""):
        return key.default
    return {"hostport": "127.0.0.1:3310", "hostports": "127.0.0.1:3310", "strlist": "a", "str": "x",
            "path": "", "int": 1}.get(key.kind)


def test_every_accepted_key_is_imported(tmp_path):
    """A cluster section naming every key of our tables: each reaches the watcher YAML or the stack."""
    skip = {"cluster-name", "prov-state-dir", "prov-db-load-sql", "prov-db-load-csv", "prov-service-plan-registry",
            "prov-db-nodes", "mdbshardproxy-hosts", "db-servers-ignored-hosts", "kube-watcher-image",
            # a restore names an existing cluster's watcher config: no sample value can point at one
            "prov-db-restore-from", "prov-db-restore-to-time", "prov-db-restore-to-gtid"}
    lines = ["[every]", 'db-servers-hosts = "127.0.0.1:3310,127.0.0.1:3311"']
    expected_watcher, expected_stack = [], []
    seen = {"db-servers-hosts"}
    for table, bucket in ((WATCHER_KEYS, expected_watcher), (ROUTING_KEYS, expected_watcher),
                          (PROVISIONING_KEYS, expected_stack)):
        for name, key in table.items():
            value = _sample(key)
            if name in skip or name in seen or value is None or value == "" or value == []:
                continue
            seen.add(name)
            value = {"db-servers-prefered-master": "127.0.0.1:3311", "prov-proxy-tags": ["masterslave", "pkg"],
                     "haproxy-servers": ["10.0.0.9"],
                     "failover-fence-pid-files": ["127.0.0.1:3310=/run/db1/mariadb.pid"],
                     "failover-salvage-binlog-dirs": ["127.0.0.1:3310=/var/lib/db1"]}.get(name, value)
            lines.append(f"{name} = {_toml(value)}")
            if key.kind != "credential":
                bucket.append(name)
    path = tmp_path / "every.toml"
    path.write_text("\n".join(lines) + "\n")
    result = import_repman_config(path)
    cluster = result.clusters["every"]
    assert not [w for w in result.warnings if "unknown" in w or "ignored" in w], result.warnings
    assert set(expected_watcher) <= set(cluster.watcher)
    assert set(expected_stack) - {"db-servers-prefered-master"} <= set(cluster.stack)
    write_outputs(result, tmp_path / "out", tmp_path / "proj" / "stacks", PASSPHRASE)
    load_config(tmp_path / "out" / "repman.yaml")
    stack_valid(tmp_path / "proj", tmp_path / "proj/stacks/Pulumi.every.yaml", "every")


@pytest.mark.parametrize("text, message", [
    ('[c]\ndb-servers-hosts = "h1"\ndb-servers-credential = "a:b"\nreplication-credential = "r:s"\n'
     'replication-multi-tier-slave = true\n', "[c] replication-multi-tier-slave: True: relay (multi-tier)"),
    ('[c]\ndb-servers-hosts = "h1"\ndb-servers-credential = "a:b"\n', "[c] replication-credential: is required"),
    ('[c]\ndb-servers-hosts = "h1"\ndb-servers-credential = "a:b"\nreplication-credential = "r:s"\n'
     'failover-mode = "auto"\n', "[c] failover-mode: 'auto' is not one of manual, automatic"),
    ('[Default]\nmonitoring-ticker = 2\n', "no cluster section"),
    ('[c\n', "invalid TOML"),
])
def test_bad_configurations_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        import_repman_config(path)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_cli_writes_nothing_without_a_passphrase_and_everything_with_one(tmp_path):
    config = write_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    cmd = [sys.executable, "-m", "repman.cli", "config", "import", str(config), "--out-dir", str(tmp_path / "o"),
           "--stacks-dir", str(tmp_path / "s")]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith(
        "repman: db-servers-credential: the stack files keep it as a Pulumi secret"), p.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**env, "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE},
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "warning: [MasterSlaveHaproxy] failover-limitt: unknown key" in p.stderr
    assert "imported 2 cluster(s)" in p.stdout
    assert (tmp_path / "s" / "Pulumi.cluster-2.yaml").exists() and (tmp_path / "o" / "repman.yaml").exists()


# The request of seed 003 (a SlapOS blog post), as published.
SEED_003_REQUEST = {
    "repman-cluster-dict": {
        "cluster1": {
            "database-amount": 4,
            "-sla-0-computer_guid": "COMP-XXX",
            "-sla-1-computer_guid": "COMP-XXX",
            "-sla-2-computer_guid": "COMP-XXX",
            "-sla-3-computer_guid": "COMP-XXX",
            "tags": [
                "gtidstrict", "bind", "pkg", "innodb", "noquerycache",
                "slow", "pfs", "linux", "readonly", "diskmonitor",
                "sqlerror", "compressbinlog", "bm4ci", "mroonga",
                "utctime", "readcommitted", "nohandshake", "ssl"
            ],
            "proxysql-user": "external",
            "proxy-tags": ["pkg", "masterslave", "linux", "noreadwritesplit", "ssl"],
            "innodb-file-per-table": 1,
            "use-ipv6": True,
            "autorejoin": True,
            "autoseed": True,
            "failover-mode": "manual",
            "failover-limit": 5,
            "failover-falsepositive-heartbeat": True,
            "failover-falsepositive-heartbeat-timeout": 3,
            "failover-falsepositive-ping-counter": 5,
            "failover-max-slave-delay": 30,
            "failover-readonly-state": True,
            "failover-restart-unsafe": False,
            "failover-time-limit": 0,
            "switchover-at-equal-gtid": False,
            "switchover-slave-wait-catch": True,
            "switchover-wait-kill": 5000,
            "switchover-wait-trx": 10,
            "switchover-wait-write-query": 10
        }
    }
}


def test_seed_003_request_validates_as_is():
    from repman.config_import import import_slapos_request

    stacks, warnings = import_slapos_request(SEED_003_REQUEST)
    stack = stacks["cluster1"]
    assert stack["prov-db-nodes"] == 4 and stack["slapos-computer-guids"] == ["COMP-XXX"] * 4
    # credentials are generated by the SlapOS instance; the rest is the request unchanged
    spec = load_cluster_spec({**{f"repman:{k}": v for k, v in stack.items()},
                              "repman:db-servers-credential": "repman:generated-1",
                              "repman:replication-credential": "repl:generated-2"})
    assert spec.node_count == 4 and spec.orchestrator == "slapos"
    assert list(spec.db_tags) == SEED_003_REQUEST["repman-cluster-dict"]["cluster1"]["tags"]
    assert list(spec.proxy_tags) == ["pkg", "masterslave", "linux", "noreadwritesplit", "ssl"]
    assert spec.setting("switchover-wait-kill") == 5000 and spec.setting("failover-mode") == "manual"
    assert sorted(w.split(":")[0] for w in warnings) == [
        "[cluster1] autoseed", "[cluster1] innodb-file-per-table", "[cluster1] proxysql-user", "[cluster1] use-ipv6"]


def test_repman_keys_doc_is_current():
    from repman.config_import import keys_markdown

    assert (ROOT / "docs" / "REPMAN-KEYS.md").read_text() == keys_markdown(), (
        "docs/REPMAN-KEYS.md is stale: run `python -m repman.config_import --write-doc` and commit it")
    text = keys_markdown()
    for line in ("| `switchover-wait-route-change` | float |", "| `replication-multi-tier-slave` |",
                 "| `graphite-*` (other keys) |", "| `diskmonitor` | my.cnf:", "| `docker` | platform hint:"):
        assert line in text, line


def test_one_account_for_both_roles_as_in_repman_samples(tmp_path):
    """repman's samples use root for admin and replication: the watcher keeps it, the stack gets 'repl'."""
    path = tmp_path / "config.toml"
    path.write_text('[Cluster_Haproxy_MasterSlaveSlave]\nprov-orchestrator = "local"\n'
                    'db-servers-hosts = "127.0.0.1:3317,127.0.0.1:3318,127.0.0.1:3319"\n'
                    'db-servers-prefered-master = "127.0.0.1:3317"\ndb-servers-credential = "root:test"\n'
                    'replication-credential = "root:test"\nhaproxy = true\nhaproxy-write-port = 3307\n'
                    'haproxy-read-port = 3306\n')
    result = import_repman_config(path)
    assert any("creates replication user 'repl'" in w for w in result.warnings)
    write_outputs(result, tmp_path / "out", tmp_path / "proj" / "stacks", PASSPHRASE)
    assert load_config(tmp_path / "out" / "repman.yaml").cluster().replication == Credential("root", "test")
    spec = stack_valid(tmp_path / "proj", tmp_path / "proj/stacks/Pulumi.cluster-haproxy-masterslaveslave.yaml",
                       "cluster-haproxy-masterslaveslave")["spec"]
    assert spec.replication == Credential("repl", "test") and spec.node_count == 3


def test_a_stack_that_would_fail_at_up_fails_the_import(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[c1]\ndb-servers-hosts = "h1"\ndb-servers-credential = "a:b"\nreplication-credential = "r:s"\n'
                    'prov-db-tags = "row,statement"\n')
    with pytest.raises(ConfigError, match=r"^\[c1\] stack: repman:prov-db-tags: tags 'row' and 'statement' contradict"):
        import_repman_config(path)
