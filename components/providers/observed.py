"""What ``read`` saw of a live resource, so ``diff`` can stay a pure comparison.

``read`` (the provider host serves it for ``pulumi refresh``) records in the outputs
whether the process runs and a digest of the config file on disk; ``diff`` compares
those recorded facts with what the new inputs would render, without touching the host.
Outputs written by ``create``/``update`` record the state they just made.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

KEY = "observed"


def text_digest(text: str | None) -> str:
    return "" if text is None else hashlib.sha256(text.encode()).hexdigest()


def observed(running: bool, config_text: str | None) -> dict[str, Any]:
    return {"running": bool(running), "config_sha256": text_digest(config_text)}


def drift(olds: Mapping[str, Any], expected_config: str) -> list[str]:
    """Reasons the recorded live state differs from what the inputs render (empty: none)."""
    seen = olds.get(KEY)
    if not isinstance(seen, Mapping):
        return []          # never read (state from before ``read`` existed): nothing known to differ
    if not seen.get("running"):
        return ["not running"]
    if seen.get("config_sha256") != text_digest(expected_config):
        return ["config"]
    return []


def integral(value: Any) -> Any:
    """Whole floats back to ints: the engine's protobuf wire turns every number into a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value
