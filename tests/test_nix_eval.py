"""Clusters declared in Nix evaluate to stack config that repman.spec accepts; bad ones fail
at evaluation time with the same complaint as the Python validator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repman.errors import ConfigError, RepmanError
from repman.nixeval import evaluate, nix_error as one_line, validate, write_stack
from repman.spec import load_cluster_spec
from testkit.nix import EXAMPLES, NIX_DIR, REPO, eval_cluster, eval_cluster_error, needs_nix, nix_string, run_nix

pytestmark = needs_nix

SECRETS = {  # what `pulumi config set --secret` would hold
    "repman:db-servers-credential": "repman:admin-pw",
    "repman:replication-credential": "repl:repl-pw",
}


def all_nix_files() -> list[Path]:
    return sorted([REPO / "flake.nix", *NIX_DIR.rglob("*.nix")])


@pytest.mark.parametrize("path", all_nix_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_nix_file_parses(path: Path):
    proc = run_nix(["--parse", str(path)])
    assert proc.returncode == 0, proc.stderr


def test_local_example_is_a_valid_three_node_cluster():
    config = eval_cluster(EXAMPLES / "local-3node.nix")
    assert "repman:db-servers-credential" not in config  # kept in Pulumi's secrets provider
    spec = load_cluster_spec({**config, **SECRETS}, project_dir="/srv/proj")
    assert spec.name == "shop" and spec.orchestrator == "local"
    assert [n.port for n in spec.nodes] == [3310, 3311, 3312]
    assert spec.semisync and spec.preferred_index() == 1
    assert spec.admin.user == "repman"
    full = eval_cluster(EXAMPLES / "local-3node.nix", output="full")
    assert full["pulumiSecrets"] == sorted(SECRETS)
    assert full["config"] == config


def test_kube_example_reads_credentials_from_the_environment(monkeypatch):
    config = eval_cluster(EXAMPLES / "kube.nix")
    assert config["repman:db-servers-credential"] == {"env": "REPMAN_DB_CREDENTIAL"}
    monkeypatch.setenv("REPMAN_DB_CREDENTIAL", "admin:a-pw")
    monkeypatch.setenv("REPMAN_REPLICATION_CREDENTIAL", "repl:r-pw")
    monkeypatch.setenv("REPMAN_MONITORING_CREDENTIAL", "mon:m-pw")
    spec = load_cluster_spec(config)
    assert spec.orchestrator == "kube" and spec.plan.name == "x3.small" and spec.node_count == 3
    assert spec.kube_namespace == "databases" and spec.proxy_tags == ("masterslave",)
    assert (spec.admin.user, spec.replication.user, spec.monitoring.user) == ("admin", "repl", "mon")
    assert spec.keep_data_on_delete is True  # set with mkDefault: still emitted


@pytest.mark.skipif(shutil.which("nix") is None, reason="the nix command is not installed (nix-bin ships it)")
def test_documented_nix_eval_command_gives_the_same_json():
    expr = f"import {NIX_DIR}/eval-cluster.nix {{ declaration = {EXAMPLES}/kube.nix; }}"
    proc = subprocess.run(["nix", "--extra-experimental-features", "nix-command", "eval", "--json", "--impure",
                           "--expr", expr], capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == eval_cluster(EXAMPLES / "kube.nix")


def test_invalid_example_fails_with_its_assertion_message():
    err = eval_cluster_error(EXAMPLES / "invalid-port-overflow.nix")
    assert "repman.db-servers-base-port: 5 nodes from port 65533 go past 65535" in err


def test_file_references_are_resolved_by_the_python_validator(tmp_path: Path):
    (tmp_path / "admin").write_text("boss:s3cret\n")
    (tmp_path / "repl").write_text("repl:r3pl\n")
    decl = tmp_path / "cluster.nix"
    decl.write_text(f"""{{
      repman.db-servers-credential.file = {nix_string(str(tmp_path / 'admin'))};
      repman.replication-credential.file = {nix_string(str(tmp_path / 'repl'))};
    }}""")
    config = eval_cluster(decl)
    assert config == {"repman:db-servers-credential": {"file": str(tmp_path / "admin")},
                      "repman:replication-credential": {"file": str(tmp_path / "repl")}}
    spec = load_cluster_spec(config)
    assert spec.admin.user == "boss" and spec.admin.password == "s3cret"
    assert spec.plan.name == "x3.tiny"  # untouched keys keep repman's defaults


def test_declarations_compose_with_imports_and_priorities(tmp_path: Path):
    (tmp_path / "common.nix").write_text("""{ lib, ... }: {
      repman.prov-db-tags = lib.mkDefault [ "gtidstrict" "row" ];
      repman.db-servers-credential.pulumiSecret = true;
      repman.replication-credential.pulumiSecret = true;
    }""")
    decl = tmp_path / "prod.nix"
    decl.write_text("""{ config, lib, ... }: {
      imports = [ ./common.nix ];
      repman.cluster-name = "prod";
      repman.prov-db-tags = [ "gtidstrict" "row" "semisync" ];
      repman.prov-sysbench-table-size = lib.mkIf (config.repman.cluster-name == "prod") 1000;
      repman.prov-watcher = lib.mkIf false false;
    }""")
    config = eval_cluster(decl)
    assert config["repman:prov-db-tags"] == ["gtidstrict", "row", "semisync"]
    assert config["repman:prov-sysbench-table-size"] == 1000
    assert "repman:prov-watcher" not in config


# Same mistake, same complaint: (Nix definitions, raw stack values, text both errors contain).
BOTH_REJECT = [
    ('prov-service-plan = "x9.huge";', {"prov-service-plan": "x9.huge"}, "prov-service-plan"),
    ('prov-orchestrator = "vmware";', {"prov-orchestrator": "vmware"}, "prov-orchestrator"),
    ('prov-db-tags = [ "row" "turbo" ];', {"prov-db-tags": ["row", "turbo"]}, "turbo"),
    ('prov-db-tags = [ "durable" "nodurable" ];', {"prov-db-tags": ["durable", "nodurable"]},
     "tags 'durable' and 'nodurable' contradict each other"),
    ('prov-proxy-tags = [ "readwritesplit" "noreadwritesplit" ];',
     {"prov-proxy-tags": ["readwritesplit", "noreadwritesplit"]},
     "tags 'readwritesplit' and 'noreadwritesplit' contradict each other"),
    ('prov-proxy-tags = [ "docker" "pkg" ];', {"prov-proxy-tags": ["docker", "pkg"]},   # one proxy-tag list
     "tags 'docker' and 'pkg' contradict each other"),
    ('db-servers-base-port = 70000;', {"db-servers-base-port": 70000}, "db-servers-base-port"),
    ('db-servers-base-port = 65534;', {"db-servers-base-port": 65534}, "3 nodes from port 65534 go past 65535"),
    ('prov-db-nodes = 0;', {"prov-db-nodes": 0}, "node count must be at least 1, got 0"),
    ('db-servers-prefered-master = "4";', {"db-servers-prefered-master": "4"},
     "node index 4 is not between 1 and 3"),
    ('db-servers-prefered-master = "db one";', {"db-servers-prefered-master": "db one"},
     "db-servers-prefered-master"),
    ('db-servers-prefered-master = "2,9";', {"db-servers-prefered-master": "2,9"},   # repman's list
     "node index 9 is not between 1 and 3"),
    ('cluster-name = "Bad_Name";', {"cluster-name": "Bad_Name"},
     "must be lowercase letters, digits and '-' (up to 40, starting with a letter)"),
    ('sysbench = true;', {"sysbench": True}, "sysbench"),
]


@pytest.mark.parametrize("nix_defs,raw,expected", BOTH_REJECT, ids=[c[2][:40] for c in BOTH_REJECT])
def test_nix_and_python_reject_the_same_mistakes(nix_defs: str, raw: dict, expected: str):
    decl = ("{ repman = { db-servers-credential.pulumiSecret = true; "
            f"replication-credential.pulumiSecret = true; {nix_defs} }}; }}")
    err = eval_cluster_error(decl)
    assert expected in err, err
    key = next(iter(raw))
    assert f"repman.{key}" in err, err
    with pytest.raises(ConfigError) as info:
        load_cluster_spec({**SECRETS, **{f"repman:{k}": v for k, v in raw.items()}})
    assert expected in str(info.value)
    assert str(info.value).startswith(f"repman:{key}")


def test_secrets_themselves_are_refused_and_not_echoed():
    err = eval_cluster_error('{ repman.db-servers-credential = "root:hunter2"; }')
    assert "repman.db-servers-credential: expected a secret reference" in err
    assert "hunter2" not in err
    err = eval_cluster_error("{ repman.db-servers-credential.file = ./secret; }")
    assert "{ file = a Nix path }" in err  # a path literal would be copied into the store
    err = eval_cluster_error('{ repman.db-servers-credential.file = "/nix/store/x-secret"; }')
    assert "outside the Nix store" in err


def test_missing_credentials_and_reused_secret_are_assertions():
    err = eval_cluster_error("{ }")
    assert "repman.db-servers-credential: is required" in err
    assert "repman.replication-credential: is required" in err
    err = eval_cluster_error('{ repman.db-servers-credential.env = "A"; repman.replication-credential.env = "A"; }')
    assert "repman.replication-credential: must not be the same secret as db-servers-credential" in err


def test_failover_settings_reach_the_spec_with_repman_names():
    base = "repman.db-servers-credential.pulumiSecret = true; repman.replication-credential.pulumiSecret = true;"
    err = eval_cluster_error(f'{{ {base} repman.failover-mode = "sometimes"; }}')
    assert 'repman.failover-mode: expected one of "manual", "automatic", got "sometimes"' in err
    err = eval_cluster_error(f'{{ {base} repman.monitoring-ticker = 0.01; }}')
    assert "repman.monitoring-ticker: expected a number between 0.05 and 3600, got 0.01" in err
    config = eval_cluster(f"""{{ {base} repman = {{ failover-mode = "automatic";
        failover-falsepositive-ping-counter = 3; haproxy = true; haproxy-write-port = 3306;
        proxysql-password.file = "/run/secrets/proxysql"; api-port = 10010; }}; }}""")
    assert config["repman:proxysql-password"] == {"file": "/run/secrets/proxysql"}
    spec = load_cluster_spec({**config, **SECRETS, "repman:proxysql-password": "admin"})
    assert spec.setting("failover-mode") == "automatic"
    assert spec.setting("failover-falsepositive-ping-counter") == 3 and spec.setting("haproxy") is True
    assert spec.setting("api-port") == 10010


def test_derived_keys_are_not_options():
    err = eval_cluster_error('{ repman.db-servers-hosts = [ "h:1" ]; }')
    assert "The option `repman.db-servers-hosts' does not exist" in err
    with pytest.raises(ConfigError, match="repman:db-servers-hosts: is set by the provisioner"):
        load_cluster_spec({**SECRETS, "repman:db-servers-hosts": ["h:1"]})


def test_unknown_option_names_its_file(tmp_path: Path):
    decl = tmp_path / "typo.nix"
    decl.write_text('{ repman.prov-orchestrater = "kube"; }')
    err = eval_cluster_error(decl)
    assert f"The option `repman.prov-orchestrater' does not exist (defined in {decl})" in err


# --- the command: python -m repman.nixeval -----------------------------------------------

def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "repman.nixeval", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, check=False)


def test_cli_prints_validated_json():
    proc = run_cli(str(EXAMPLES / "local-3node.nix"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["repman:cluster-name"] == "shop"
    assert "pulumi config set --secret repman:db-servers-credential" in proc.stderr


def test_cli_reports_an_invalid_declaration_in_one_line():
    proc = run_cli(str(EXAMPLES / "invalid-port-overflow.nix"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and "5 nodes from port 65533 go past 65535" in lines[0]


def test_cli_missing_file_is_one_line(tmp_path: Path):
    proc = run_cli(str(tmp_path / "nope.nix"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.nix'}: no such Nix file"


def test_one_line_error_joins_assertions():
    stderr = ("error: repman cluster declaration: failed assertions:\n       - a: one\n       - b: two\n"
              "(use '--show-trace' to show detailed location information)\n")
    assert one_line(stderr) == "repman cluster declaration: failed assertions: a: one; b: two"


def test_stack_file_is_merged_keeping_secrets_and_other_namespaces(tmp_path: Path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.prod.yaml").write_text(yaml.safe_dump({
        "encryptionsalt": "v1:salt",
        "config": {
            "kubernetes:context": "prod-ctx",
            "repman:db-servers-credential": {"secure": "v1:ciphertext"},
            "repman:replication-credential": "repl:plaintext-pw",
            "repman:prov-db-nodes": 7,
        },
    }))
    proc = run_cli(str(EXAMPLES / "local-3node.nix"), "--stack", "prod", "--stacks-dir", str(stacks), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote " in proc.stdout and "cluster shop, local backend, 3 nodes (x3.tiny)" in proc.stdout
    text = (stacks / "Pulumi.prod.yaml").read_text()
    assert text.startswith("# The repman:* keys are generated from ")
    assert "plaintext-pw" not in text
    doc = yaml.safe_load(text)
    assert doc["encryptionsalt"] == "v1:salt"
    config = doc["config"]
    assert config["kubernetes:context"] == "prod-ctx"
    assert config["repman:db-servers-credential"] == {"secure": "v1:ciphertext"}
    assert "repman:replication-credential" not in config
    assert "repman:prov-db-nodes" not in config  # the declaration is the source of truth
    assert config["repman:cluster-name"] == "shop"
    assert "dropped the unencrypted value of repman:replication-credential" in proc.stderr
    assert "pulumi config set --secret --stack prod repman:replication-credential" in proc.stderr


def pulumi_program_view(config: dict) -> dict:
    """Config as the Pulumi engine hands it to a Python program: strings, JSON for structures."""
    out = {}
    for key, value in config.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out


PULUMI_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


def test_written_stack_matches_pulumi_yaml_types_and_validates(tmp_path: Path, monkeypatch):
    from components.pulumi_config import merge_stack_config

    project_doc = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    project = project_doc["config"]
    evaluation = evaluate(EXAMPLES / "kube.nix")
    result = write_stack(evaluation, "kube", tmp_path, passphrase="nix-phrase")
    doc = yaml.safe_load(result.path.read_text())
    config = doc["config"]
    for key, value in config.items():
        declared = project.get(key.partition(":")[2], {}).get("type")
        if declared and not project[key.partition(":")[2]].get("secret"):  # Pulumi checks declared keys
            assert isinstance(value, PULUMI_TYPES[declared]), (key, value, declared)
    # Secret-declared credentials: the {env} reference is stored as a secure value.
    assert set(config["repman:db-servers-credential"]) == {"secure"} and "REPMAN_DB" not in result.path.read_text()
    merged = merge_stack_config(project_doc, "kube", doc, env={"PULUMI_CONFIG_PASSPHRASE": "nix-phrase"})
    assert merged["repman:db-servers-credential"] == '{"env":"REPMAN_DB_CREDENTIAL"}'
    monkeypatch.setenv("REPMAN_DB_CREDENTIAL", "admin:a")
    monkeypatch.setenv("REPMAN_REPLICATION_CREDENTIAL", "repl:r")
    monkeypatch.setenv("REPMAN_MONITORING_CREDENTIAL", "mon:m")
    spec = load_cluster_spec(pulumi_program_view(merged))
    assert spec.name == "orders" and spec.admin.user == "admin" and spec.db_tags[-1] == "utctime"


def test_validate_uses_placeholders_unless_asked_to_resolve():
    evaluation = evaluate(EXAMPLES / "kube.nix")
    assert validate(evaluation).name == "orders"  # no environment variables needed
    with pytest.raises(ConfigError, match="REPMAN_DB_CREDENTIAL"):
        validate(evaluation, resolve_secrets=True)


def test_bad_stack_name_is_refused():
    evaluation = evaluate(EXAMPLES / "local-3node.nix")
    with pytest.raises(RepmanError, match="--stack"):
        write_stack(evaluation, "../etc/passwd")


def test_secret_references_need_the_stack_passphrase(tmp_path: Path):
    """Pulumi.yaml declares the credentials secret: without a passphrase nothing is written."""
    stacks = tmp_path / "stacks"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    proc = subprocess.run([sys.executable, "-m", "repman.nixeval", str(EXAMPLES / "kube.nix"), "--stack", "kube",
                           "--stacks-dir", str(stacks)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE")
    assert not (stacks / "Pulumi.kube.yaml").exists()
    with pytest.raises(ConfigError, match="repman:db-servers-credential: Pulumi.yaml declares it secret"):
        write_stack(evaluate(EXAMPLES / "kube.nix"), "kube", stacks)
