"""Reading the stack's ``repman:`` config into a ``ClusterSpec`` inside a Pulumi program."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from repman.errors import RepmanError
from repman.spec import NAMESPACE, ClusterSpec, load_cluster_spec


def raw_stack_config() -> dict[str, Any]:
    """Every ``repman:`` key the engine (or ``PULUMI_CONFIG`` under mocks) gave the program."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {k: v for k, v in merged.items() if k.startswith(NAMESPACE + ":")}


def load_stack_spec(project_dir: Path | None = None) -> ClusterSpec:
    """The validated spec, or a one-line ``RunError`` (Pulumi prints it without a traceback)."""
    try:
        return load_cluster_spec(raw_stack_config(), project_dir=project_dir)
    except RepmanError as exc:
        raise pulumi.RunError(str(exc)) from None
