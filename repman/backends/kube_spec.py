"""Kubernetes-only facts of one cluster, without Pulumi: quantities, the start command, volumes.

The Pulumi component (``components/backends/kube.py``) turns these into resources.
Object names, role labels and selectors belong to the label router
(``repman.routing.kube``), so the ``-primary``/``-replicas`` Services always select
what it flips; the image's paths and files, shared with Docker and OpenSVC, are in
``repman.backends.container``.
"""

from __future__ import annotations

from typing import Any, Mapping, NotRequired, TypedDict

from repman.plans import ServicePlan
from repman.routing.kube import KubeNames

WATCHER_CONFIG_DIR = "/etc/repman"


def memory_quantity(plan: ServicePlan) -> str:
    return f"{plan.memory_mb}Mi"


def cpu_quantity(plan: ServicePlan) -> str:
    return str(plan.cores)


def storage_quantity(plan: ServicePlan) -> str:
    return f"{plan.data_size_gb}Gi"


def start_command(names: KubeNames) -> list[str]:
    """Per-pod identity from the ordinal in the pod name (server ids 1..N, like other backends)."""
    script = (
        'ord="${HOSTNAME##*-}"; '
        f'exec docker-entrypoint.sh mariadbd --server-id="$((ord + 1))" '
        f'--report-host="${{HOSTNAME}}.{names.headless}.{names.namespace}.svc.cluster.local"'
    )
    return ["bash", "-c", script]


class EmptyDirFields(TypedDict):
    """Keyword arguments of ``EmptyDirVolumeSourceArgs``."""

    medium: NotRequired[str]
    size_limit: str


def temp_volume(values: Mapping[str, Any]) -> EmptyDirFields:
    """emptyDir fields of a pod's /tmp: ``prov-db-docker-tmpfs-size`` (memory) wins over
    ``prov-db-disk-temp-size`` (MB of node disk)."""
    tmpfs = str(values.get("prov-db-docker-tmpfs-size") or "").strip()
    if tmpfs:
        size = tmpfs.upper().rstrip("B")
        unit = {"K": "Ki", "M": "Mi", "G": "Gi"}.get(size[-1:], "")
        return {"medium": "Memory", "size_limit": (size[:-1] + unit) if unit else size}
    return {"size_limit": f"{int(values.get('prov-db-disk-temp-size') or 128)}Mi"}
