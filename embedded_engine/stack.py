"""The stack's project settings as the Pulumi engine hands them to a program: name, config, overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from repman.errors import RepmanError


def project_name(project_dir: Path) -> str:
    doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    return str(doc.get("name") or "repman")


def config_env(config: dict[str, Any]) -> str:
    """``PULUMI_CONFIG`` as the engine passes it: strings, structured values as JSON."""
    def text(v: Any) -> str:
        if isinstance(v, (list, dict)):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)
    return json.dumps({k: text(v) for k, v in config.items()})


def parse_overrides(items: list[str], project: str) -> dict[str, Any]:
    """``-c key=value`` as ``pulumi up --config``: bare keys get the project namespace; JSON values parsed."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RepmanError(f"--config {item!r}: expected key=value")
        full = key if ":" in key else f"{project}:{key}"
        try:
            out[full] = json.loads(value) if value[:1] in ("[", "{") else value
        except ValueError:
            out[full] = value
    return out
