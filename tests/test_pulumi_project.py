"""Pulumi.yaml and the committed stacks agree with the provisioning key table."""

from __future__ import annotations

from pathlib import Path

import yaml

from repman.spec import PROVISIONING_KEYS, load_cluster_spec

ROOT = Path(__file__).resolve().parent.parent
TYPES = {"str": "string", "path": "string", "enum": "string", "credential": "string", "hostport": "string",
         "int": "integer", "bool": "boolean", "strlist": "array"}


def project() -> dict:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def test_project_file_basics():
    doc = project()
    assert doc["name"] == "repman"  # the config namespace
    assert doc["runtime"]["name"] == "python"
    assert doc["stackConfigDir"] == "stacks"
    assert (ROOT / "__main__.py").is_file()


def test_config_schema_matches_the_key_table():
    config = project()["config"]
    assert list(config) == list(PROVISIONING_KEYS)
    for name, key in PROVISIONING_KEYS.items():
        decl = config[name]
        assert decl["type"] == TYPES[key.kind], name
        assert decl["description"].startswith(key.help), name
        if key.kind == "strlist":
            assert decl["items"] == {"type": "string"}
        if key.default is None or key.secret:
            assert "default" not in decl, name
        else:
            assert decl["default"] == key.default, name


def test_local_stack_is_a_valid_three_node_local_cluster():
    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]
    spec = load_cluster_spec(config, project_dir=ROOT)
    assert spec.orchestrator == "local"
    assert spec.node_count == 3 and spec.plan.db_nodes == 3
    assert spec.base_port == 3310
    assert spec.state_dir == ROOT / ".state" / "local"
    assert spec.admin.password and spec.replication.password
