"""Pulumi.yaml and the committed stacks, under the Pulumi CLI's own config rules.

``components/pulumi_config.py`` replays ``mergeConfig`` / ``validateStackConfigValues``
(pulumi/pulumi ``sdk/go/common/workspace/config.go``) and ``Project.Validate``
(``project.go``); the messages compared here are the CLI's own texts.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.pulumi_config import (
    PulumiConfigError,
    load_stack_config,
    merge_stack_config,
    render_project_file,
    undeclared_keys,
    validate_project,
)
from repman.spec import PROVISIONING_KEYS, REQUIRED_KEYS, load_cluster_spec

ROOT = Path(__file__).resolve().parent.parent
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
EXAMPLE = {"PULUMI_CONFIG_PASSPHRASE": "repman-example"}  # the README's example passphrase
TYPES = {"str": "string", "path": "string", "enum": "string", "credential": "string", "hostport": "string",
         "int": "integer", "bool": "boolean", "strlist": "array"}


def project() -> dict:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def stack_doc(stack: str) -> dict:
    return yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())


def test_project_file_basics():
    doc = project()
    assert doc["name"] == "repman"  # the config namespace
    assert doc["runtime"]["name"] == "python"
    assert doc["stackConfigDir"] == "stacks"
    assert (ROOT / "__main__.py").is_file()
    validate_project(doc)


def test_committed_project_file_is_generated_from_the_key_table():
    assert (ROOT / "Pulumi.yaml").read_text() == render_project_file(), (
        "Pulumi.yaml is stale: run `python -m components.pulumi_config --write` and commit it")


def test_only_the_two_credentials_are_required_and_they_are_secret():
    config = project()["config"]
    required = [k for k, d in config.items() if "default" not in d and "value" not in d]
    assert sorted(required) == sorted(REQUIRED_KEYS)
    assert all(config[k]["secret"] is True for k in REQUIRED_KEYS)
    assert not any(d.get("secret") for k, d in config.items() if k not in REQUIRED_KEYS)
    for name, key in PROVISIONING_KEYS.items():
        if name in undeclared_keys():
            assert name not in config and (key.secret or key.default is None), name
            continue
        decl = config[name]
        assert decl["type"] == TYPES[key.kind], name
        assert decl["description"].startswith(key.help), name
        if key.kind == "strlist":
            assert decl["items"] == {"type": "string"}
        if name not in REQUIRED_KEYS:
            assert decl["default"] == key.default, name


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_passes_the_cli_rules_and_validates(stack: str):
    values = load_stack_config(ROOT, stack, env=EXAMPLE)
    for key in REQUIRED_KEYS:
        assert ":" in values[f"repman:{key}"] and "secure" in stack_doc(stack)["config"][f"repman:{key}"]
    spec = load_cluster_spec(values, project_dir=ROOT)
    assert spec.orchestrator == stack or stack == "local"


def test_the_old_schema_made_every_stack_fail():
    """An optional key declared without a default is required by the CLI: the bug of issue 10."""
    old = copy.deepcopy(project())
    old["config"]["prov-db-nodes"] = {"type": "integer", "description": "optional"}
    with pytest.raises(PulumiConfigError) as info:
        merge_stack_config(old, "local", stack_doc("local"), env=EXAMPLE)
    assert str(info.value) == "Stack 'local' is missing configuration value 'prov-db-nodes'"


@pytest.mark.parametrize("drop, message", [
    (["repman:db-servers-credential"], "Stack 'kube' is missing configuration value 'db-servers-credential'"),
    (["repman:db-servers-credential", "repman:replication-credential"],
     "Stack 'kube' is missing configuration values 'db-servers-credential' and 'replication-credential'"),
])
def test_a_stack_missing_a_credential_fails_with_the_cli_message(drop, message):
    doc = stack_doc("kube")
    for key in drop:
        del doc["config"][key]
    with pytest.raises(PulumiConfigError) as info:
        merge_stack_config(project(), "kube", doc, env=EXAMPLE)
    assert str(info.value) == message


def test_three_missing_keys_are_listed_as_the_cli_lists_them():
    doc = project()
    doc["config"]["a-key"] = {"type": "string"}
    with pytest.raises(PulumiConfigError) as info:
        merge_stack_config(doc, "x", {"config": {}}, env=EXAMPLE)
    assert str(info.value) == ("Stack 'x' is missing configuration values 'a-key', 'db-servers-credential' "
                               "and 'replication-credential'")


@pytest.mark.parametrize("key, value, message", [
    ("repman:db-servers-credential", "repman:plain-pw",
     "Stack 'local' with configuration key 'db-servers-credential' must be encrypted as it's secret"),
    ("repman:db-servers-base-port", "33x0",
     "Stack 'local' with configuration key 'db-servers-base-port' must be of type 'integer'"),
    ("repman:prov-keep-data-on-delete", "maybe",
     "Stack 'local' with configuration key 'prov-keep-data-on-delete' must be of type 'boolean'"),
    ("repman:prov-db-tags", [1, 2],
     "Stack 'local' with configuration key 'prov-db-tags' must be of type 'array<string>'"),
    ("repman:cluster-name", ["a"],
     "Stack 'local' with configuration key 'cluster-name' must be of type 'string'"),
])
def test_type_and_secret_rules(key, value, message):
    doc = stack_doc("local")
    doc["config"][key] = value
    with pytest.raises(PulumiConfigError) as info:
        merge_stack_config(project(), "local", doc, env=EXAMPLE)
    assert str(info.value) == message


def test_scalars_are_checked_as_the_cli_holds_them_as_text():
    doc = stack_doc("local")
    doc["config"].update({"repman:db-servers-base-port": "4000", "repman:prov-keep-data-on-delete": "true",
                          "repman:cluster-name": 12})
    values = merge_stack_config(project(), "local", doc, env=EXAMPLE)
    assert values["repman:db-servers-base-port"] == "4000" and values["repman:cluster-name"] == 12


def test_defaults_fill_unset_keys_and_overrides_satisfy_required_ones():
    values = merge_stack_config(project(), "bare", {"config": {}}, env={},
                                overrides={"repman:db-servers-credential": "a:b", "replication-credential": "c:d"})
    assert values["repman:prov-service-plan"] == "x3.tiny" and values["repman:db-servers-base-port"] == 3310
    assert values["repman:replication-credential"] == "c:d"
    assert "repman:prov-db-nodes" not in values  # undeclared: repman.spec gives the plan's count


def test_wrong_or_missing_passphrase():
    with pytest.raises(PulumiConfigError, match="Stack 'local': failed to decrypt: incorrect passphrase"):
        load_stack_config(ROOT, "local", env={"PULUMI_CONFIG_PASSPHRASE": "nope"})
    with pytest.raises(PulumiConfigError, match="passphrase must be set with PULUMI_CONFIG_PASSPHRASE"):
        load_stack_config(ROOT, "local", env={})


def test_project_validate_rules():
    for config, message in (
        ({"k": {"type": "array"}}, "The configuration key 'k' declares an array but does not specify"),
        ({"k": {"type": "integer", "default": "x"}},
         "The default value specified for configuration key 'k' is not of the expected type 'integer'"),
        ({"k": {"default": 1, "value": 2}}, "project config 'k' cannot have both a 'default' and 'value'"),
        ({"aws:region": {"type": "string", "value": "x"}},
         "Configuration key 'aws:region' is not namespaced by the project and should not define a type"),
    ):
        with pytest.raises(PulumiConfigError) as info:
            validate_project({"name": "repman", "config": config})
        assert str(info.value).startswith(message)


def test_the_embedded_engine_applies_the_same_rules(tmp_path: Path):
    """A stack without its credentials: one line with the CLI's message, exit 2, nothing created."""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks" / "Pulumi.bare.yaml").write_text(f"config:\n  repman:prov-state-dir: {tmp_path / 's'}\n")
    done = subprocess.run([sys.executable, "-m", "embedded_engine", "up", "--stack", "bare",
                           "--project-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr == ("error: Stack 'bare' is missing configuration values 'db-servers-credential' and "
                           "'replication-credential'\n")
    assert not (tmp_path / "s").exists()


def test_local_stack_is_a_valid_three_node_local_cluster():
    spec = load_cluster_spec(load_stack_config(ROOT, "local", env=EXAMPLE), project_dir=ROOT)
    assert spec.orchestrator == "local"
    assert spec.node_count == 3 and spec.plan.db_nodes == 3
    assert spec.base_port == 3310
    assert spec.state_dir == ROOT / ".state" / "local"
    assert spec.admin.password and spec.replication.password
    assert spec.admin.password not in (ROOT / "stacks" / "Pulumi.local.yaml").read_text()
