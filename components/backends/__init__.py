"""Backend registry: ``prov-orchestrator`` -> the module that implements it."""

from __future__ import annotations

import importlib

from components.backends.base import Backend
from repman.errors import ConfigError
from repman.spec import ClusterSpec

# Tried in order; the first importable module wins (helpers may name theirs either way).
MODULES: dict[str, tuple[str, ...]] = {
    "local": ("components.backends.local",),
    "onpremise": ("components.backends.onpremise", "components.backends.ssh"),
    "kube": ("components.backends.kubernetes", "components.backends.kube"),
    "docker": ("components.backends.docker",),
    "opensvc": ("components.backends.opensvc",),
    "slapos": ("components.backends.slapos",),
}


def get_backend(spec: ClusterSpec) -> Backend:
    """The backend instance for the spec's orchestrator, or a clear config error."""
    for module_name in MODULES.get(spec.orchestrator, ()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        factory = getattr(module, "create_backend", None)
        if factory is None:
            raise ConfigError("repman:prov-orchestrator", f"{module_name} has no create_backend(spec)")
        return factory(spec)
    raise ConfigError("repman:prov-orchestrator", f"backend {spec.orchestrator!r} is not available in this version")
