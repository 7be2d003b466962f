"""Kubernetes facts of one cluster, without Pulumi: names, labels, pod DNS, my.cnf, scripts.

The Pulumi component (``components/backends/kube.py``) turns these into resources;
the in-cluster bootstrap job and the watcher's label router use the same names and
labels, so the ``-primary``/``-replicas`` Services always select what they flip.
"""

from __future__ import annotations

from typing import Any, Mapping

from dataclasses import dataclass

from repman.mycnf import NodeContext, render_mycnf
from repman.paths import templates_dir
from repman.plans import ServicePlan

ROLE_LABEL = "repman.io/role"
PRIMARY, REPLICA = "primary", "replica"
DB_PORT = 3306
DATA_DIR = "/var/lib/mysql"
RUN_DIR = "/run/mysqld"
CONF_DIR = "/etc/mysql/conf.d"
SSL_DIR = "/etc/mysql/ssl"
INITDB_DIR = "/docker-entrypoint-initdb.d"
WATCHER_CONFIG_DIR = "/etc/repman"
DATA_VOLUME = "data"


@dataclass(frozen=True)
class KubeNames:
    """Every object name of one cluster (all in one namespace)."""

    cluster: str
    namespace: str

    @property
    def statefulset(self) -> str:
        return f"{self.cluster}-db"

    @property
    def headless(self) -> str:
        return f"{self.cluster}-db-hl"

    @property
    def primary_service(self) -> str:
        return f"{self.cluster}-primary"

    @property
    def replicas_service(self) -> str:
        return f"{self.cluster}-replicas"

    @property
    def watcher(self) -> str:
        return f"{self.cluster}-watcher"

    def pod(self, ordinal: int) -> str:
        return f"{self.statefulset}-{ordinal}"

    def pod_host(self, ordinal: int) -> str:
        """Stable DNS name of a StatefulSet pod through the headless Service."""
        return f"{self.pod(ordinal)}.{self.headless}.{self.namespace}.svc.cluster.local"

    def pvc(self, ordinal: int) -> str:
        """The claim the StatefulSet controller makes from the template for one pod."""
        return f"{DATA_VOLUME}-{self.pod(ordinal)}"

    def service_host(self, service: str) -> str:
        return f"{service}.{self.namespace}.svc.cluster.local"

    def pod_of_host(self, host: str) -> str | None:
        """Pod name from a server host of this cluster (``<pod>.<headless>...``), else None."""
        first, _, rest = host.partition(".")
        if first.startswith(self.statefulset + "-") and (not rest or rest.startswith(self.headless)):
            return first
        return None


def selector_labels(cluster: str) -> dict[str, str]:
    """Labels every database pod carries (the StatefulSet selector)."""
    return {
        "app.kubernetes.io/name": "mariadb",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/component": "database",
        "app.kubernetes.io/managed-by": "repman",
    }


def role_selector(cluster: str, role: str) -> dict[str, str]:
    return {**selector_labels(cluster), ROLE_LABEL: role}


def memory_quantity(plan: ServicePlan) -> str:
    return f"{plan.memory_mb}Mi"


def cpu_quantity(plan: ServicePlan) -> str:
    return str(plan.cores)


def storage_quantity(plan: ServicePlan) -> str:
    return f"{plan.data_size_gb}Gi"


def container_mycnf(tags: list[str] | tuple[str, ...], plan: ServicePlan,
                    settings: Mapping[str, Any] | None = None) -> str:
    """my.cnf shared by every pod; server_id and report_host come from the start command.
    ``settings``: the stack's non-default prov-db-* values (``ClusterSpec.db_settings()``)."""
    settings = settings or {}
    ctx = NodeContext(
        server_id=1, port=DB_PORT, datadir=DATA_DIR, socket=f"{RUN_DIR}/mysqld.sock", run_dir=RUN_DIR,
        tmp_dir="/tmp", report_host="pod", bind_address="0.0.0.0", ssl_dir=SSL_DIR, user="",
        max_connections=int(settings.get("max_connections", 200)),
        expire_logs_days=int(settings.get("expire_logs_days", 5)),
        gtid_domain_id=int(settings.get("gtid_domain_id", 0)),
    )
    return render_mycnf(list(tags), plan, ctx)


def start_command(names: KubeNames) -> list[str]:
    """Per-pod identity from the ordinal in the pod name (server ids 1..N, like other backends)."""
    script = (
        'ord="${HOSTNAME##*-}"; '
        f'exec docker-entrypoint.sh mariadbd --server-id="$((ord + 1))" '
        f'--report-host="${{HOSTNAME}}.{names.headless}.{names.namespace}.svc.cluster.local"'
    )
    return ["bash", "-c", script]


def admin_init_script() -> str:
    """Init script (templates/kube/admin-init.sh) creating the admin account from the Secret's env."""
    return (templates_dir() / "kube" / "admin-init.sh").read_text()


def readiness_command() -> list[str]:
    """The image's own health check: connects and sees InnoDB initialised."""
    return ["healthcheck.sh", "--connect", "--innodb_initialized"]


def temp_volume(values: Mapping[str, Any]) -> dict[str, str]:
    """emptyDir fields of a pod's /tmp: ``prov-db-docker-tmpfs-size`` (memory) wins over
    ``prov-db-disk-temp-size`` (MB of node disk)."""
    tmpfs = str(values.get("prov-db-docker-tmpfs-size") or "").strip()
    if tmpfs:
        size = tmpfs.upper().rstrip("B")
        unit = {"K": "Ki", "M": "Mi", "G": "Gi"}.get(size[-1:], "")
        return {"medium": "Memory", "size_limit": (size[:-1] + unit) if unit else size}
    return {"size_limit": f"{int(values.get('prov-db-disk-temp-size') or 128)}Mi"}
