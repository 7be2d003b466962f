"""One source of truth: the Nix options are made from nix/generated/schema.json, which is made
from the Python key tables; these tests fail when either copy drifts from Python."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import pytest

from repman.api.keys import API_KEYS
from repman.backup.keys import BACKUP_KEYS
from repman.errors import ConfigError, RepmanError
from repman.keys import Key, coerce
from repman.mycnf import known_tags
from repman.nixschema import check_schema, nix_schema, render_schema
from repman.plans import load_plans
from repman.routing.keys import ROUTING_KEYS
from repman.spec import PROVISIONING_KEYS, PROXY_TAGS, load_cluster_spec, watcher_passthrough_keys
from repman.watcher.keys import WATCHER_KEYS
from testkit.nix import NIX_DIR, needs_nix, nix_json


def test_committed_schema_is_what_python_reports_now():
    path = NIX_DIR / "generated" / "schema.json"
    assert path.read_text() == render_schema(), (
        "nix/generated/schema.json is stale: run `python -m repman.nixeval --write-schema` and commit it")
    check_schema(NIX_DIR)


def test_stale_schema_is_reported_with_the_fix(tmp_path: Path):
    (tmp_path / "generated").mkdir()
    doc = nix_schema()
    doc["plans"].pop("x3.tiny")
    (tmp_path / "generated" / "schema.json").write_text(render_schema(doc))
    with pytest.raises(RepmanError, match="stale.*--write-schema"):
        check_schema(tmp_path)


def test_schema_carries_plans_tags_and_every_table():
    schema = nix_schema()
    assert sorted(schema["plans"]) == sorted(load_plans())
    assert schema["plans"]["x3.tiny"]["db-nodes"] == 3
    assert schema["tags"] == known_tags()
    assert schema["proxyTags"] == list(PROXY_TAGS)
    assert [e["name"] for e in schema["stack"]] == list(STACK_KEYS)
    assert [e["name"] for e in schema["watcher"]] == list(WATCHER_KEYS)
    assert [e["name"] for e in schema["routing"]] == list(ROUTING_KEYS)
    assert [e["name"] for e in schema["api"]] == list(API_KEYS)


def test_every_stack_key_of_the_schema_is_taken_by_the_stack_validator():
    secrets = {"repman:db-servers-credential": "a:x", "repman:replication-credential": "b:y"}
    for name, key in STACK_KEYS.items():
        if name in PROVISIONING_KEYS:
            continue
        spec = load_cluster_spec({**secrets, f"repman:{name}": key.default})
        assert name in {**spec.watcher_settings, **spec.api_settings}, name


# --- the evaluated Nix options against the live Python tables -------------------------------

def probes_for(key: Key) -> list[Any]:
    """Typed candidate values on both sides of every bound (no strings for numbers: Python
    accepts "3310" from Pulumi's string config, Nix is typed)."""
    kind = key.kind
    if kind == "int":
        lo = int(key.minimum) if key.minimum is not None else -5
        hi = int(key.maximum) if key.maximum is not None else 10 ** 6
        return [lo, hi, lo - 1, hi + 1, 1.5, True] if key.maximum is not None or key.minimum is not None \
            else [lo, hi, 1.5, True]
    if kind == "float":
        lo = key.minimum if key.minimum is not None else -5.0
        hi = key.maximum if key.maximum is not None else 1e6
        out = [lo, hi, (lo + hi) / 2, 1, True]
        if key.minimum is not None:
            out.append(lo - 0.5)
        if key.maximum is not None:
            out.append(hi + 0.5)
        return out
    if kind == "enum":
        return [*key.choices, "not-a-choice", 3]
    if kind == "bool":
        return [True, False, 0]
    if kind in ("str", "path"):
        return ["x", "/abs/path", "", 3]
    if kind == "hostport":
        return ["h:1", "db-1.example:3306", "[::1]:3306", "h:00080", "h:0", "h:65536", "h", "a b:1", 3]
    if kind == "hostports":
        return [["h:1", "g:2"], [], ["h:1", "bad"]]  # Python also splits "a,b" strings; Nix is typed
    if kind == "strlist":
        return [["a", "b"], [], [1]]
    return []


def python_accepts(key: Key, value: Any) -> bool:
    try:
        coerce(key, value)
    except ConfigError:
        return False
    return True


def is_secret(key: Key) -> bool:
    return key.secret or key.kind == "credential"


# What a stack takes: provisioning keys, then the watcher/routing and API keys it passes on.
STACK_KEYS = {**PROVISIONING_KEYS, **watcher_passthrough_keys(), **API_KEYS}
TABLES = {
    "stack": STACK_KEYS,
    "watcher": {**WATCHER_KEYS, **ROUTING_KEYS, **BACKUP_KEYS},
    "api": API_KEYS,
}
CHOICES = {  # string keys whose choices are checked by repman.spec, not by coerce
    "prov-service-plan": lambda: sorted(load_plans()),
    "prov-db-tags": known_tags,
    "prov-proxy-tags": lambda: list(PROXY_TAGS),
}


@pytest.fixture(scope="module")
def option_tables() -> dict[str, Any]:
    probes = {
        section: {k.name: probes_for(k) for k in table.values()
                  if not is_secret(k) and k.name not in CHOICES}
        for section, table in TABLES.items()
    }
    return nix_json([str(NIX_DIR / "tests" / "option-table.nix"), "--argstr", "probesJSON", json.dumps(probes)])


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b)
    return a == b


@needs_nix
@pytest.mark.parametrize("section", sorted(TABLES))
def test_nix_options_match_python_keys(section: str, option_tables: Mapping[str, Any]):
    nix = option_tables[section]
    table = TABLES[section]
    assert sorted(nix) == sorted(table), f"{section}: Nix options and Python keys differ"
    for name, key in table.items():
        opt = nix[name]
        assert opt["description"] == key.help, name
        if is_secret(key):
            assert opt["shape"] == {"name": "repmanSecretRef", "nullable": True}, name
            assert opt["default"] is None, name
            continue
        assert same_value(opt["default"], key.default), (name, opt["default"], key.default)
        assert opt["shape"].get("nullable", False) == (key.default is None), name
        if key.kind == "enum":
            assert opt["shape"]["enum"] == list(key.choices), name
        if name in CHOICES:
            shape = opt["shape"]["elem"] if opt["shape"].get("list") else opt["shape"]
            assert shape["enum"] == CHOICES[name](), name
            continue
        values = probes_for(key)
        expected = [python_accepts(key, v) for v in values]
        assert opt["accepts"] == expected, f"{section}.{name}: probes {values}: Nix {opt['accepts']}, Python {expected}"
