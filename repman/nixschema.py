"""The schema the Nix options are generated from, as JSON, made from the Python key tables.

Nix cannot read YAML or import Python, so ``nix/generated/schema.json`` carries the
stack keys (``repman.spec``), watcher/routing/API keys, plan names and tags. It is
the single source of truth of the Nix side; a test regenerates it and fails when
the committed copy is stale.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any, Iterable, Mapping

from repman.api.keys import API_KEYS
from repman.backup.keys import BACKUP_KEYS
from repman.errors import RepmanError
from repman.keys import Key
from repman.mycnf import CONFLICTING_TAGS, known_tags
from repman.plans import load_plans
from repman.routing.keys import ROUTING_KEYS
from repman.spec import PROXY_TAGS, spec_schema, watcher_passthrough_keys
from repman.tags import PROXY_EXCLUSIVE
from repman.watcher.config import REQUIRED as WATCHER_REQUIRED
from repman.watcher.keys import WATCHER_KEYS

SCHEMA_VERSION = 1
REGENERATE = "python -m repman.nixeval --write-schema"


def key_entry(key: Key, required: Iterable[str] = ()) -> dict[str, Any]:
    """One key as JSON-able data, in the shape of ``repman.spec.spec_schema`` entries."""
    entry: dict[str, Any] = {
        "name": key.name, "kind": key.kind, "default": key.default, "help": key.help,
        "secret": key.secret, "required": key.name in tuple(required),
    }
    if key.choices:
        entry["choices"] = list(key.choices)
    if key.minimum is not None:
        entry["minimum"] = key.minimum
    if key.maximum is not None:
        entry["maximum"] = key.maximum
    if key.default_port is not None:
        entry["defaultPort"] = key.default_port
    return entry


def _entries(table: Mapping[str, Key], required: Iterable[str] = ()) -> list[dict[str, Any]]:
    return [key_entry(k, required) for k in table.values()]


def stack_entries() -> list[dict[str, Any]]:
    """Every key ``load_cluster_spec`` takes: the provisioning table (``spec_schema``), then
    the watcher/routing keys it passes through to the watcher config, then the API keys."""
    entries = list(spec_schema()["keys"])
    listed = {e["name"] for e in entries}
    for table in (watcher_passthrough_keys(), API_KEYS):
        entries.extend(key_entry(k) for k in table.values() if k.name not in listed)
        listed.update(table)
    return entries


def nix_schema() -> dict[str, Any]:
    """Everything the Nix options need, computed live from the Python tables."""
    spec = spec_schema()
    return {
        "comment": f"Generated from repman's key tables by `{REGENERATE}`; do not edit.",
        "version": SCHEMA_VERSION,
        "namespace": spec["namespace"],
        "stack": stack_entries(),
        "watcher": _entries(WATCHER_KEYS, WATCHER_REQUIRED),
        "routing": _entries(ROUTING_KEYS),
        "backup": _entries(BACKUP_KEYS),
        "api": _entries(API_KEYS),
        "plans": {name: plan.as_dict() for name, plan in sorted(load_plans().items())},
        "tags": known_tags(),
        "conflictingTags": [list(pair) for pair in CONFLICTING_TAGS],
        "proxyTags": list(PROXY_TAGS),
        "conflictingProxyTags": [list(pair) for group in PROXY_EXCLUSIVE for pair in combinations(group, 2)],
    }


def render_schema(schema: Mapping[str, Any] | None = None) -> str:
    return json.dumps(schema if schema is not None else nix_schema(), indent=2, sort_keys=True) + "\n"


def schema_path(nix_dir: Path) -> Path:
    return nix_dir / "generated" / "schema.json"


def write_schema(nix_dir: Path) -> Path:
    path = schema_path(nix_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_schema())
    return path


def check_schema(nix_dir: Path) -> None:
    """Raise when the committed schema differs from what the Python tables say now."""
    path = schema_path(nix_dir)
    try:
        committed = path.read_text()
    except OSError:
        raise RepmanError(f"{path}: missing; generate it with `{REGENERATE}`") from None
    if committed != render_schema():
        raise RepmanError(f"{path} is stale (the Python key tables, plans or tags changed): "
                          f"regenerate it with `{REGENERATE}` and commit it")
