"""The official MariaDB image as every container backend runs it: paths, port, my.cnf, admin init.

Kubernetes, Docker and OpenSVC all start the same image with the same files, so these
facts live here under a generic name; what only Kubernetes needs stays in ``kube_spec``.
"""

from __future__ import annotations

from typing import Any, Mapping

from repman.mycnf import NodeContext, render_mycnf
from repman.paths import templates_dir
from repman.plans import ServicePlan

DB_PORT = 3306
DATA_DIR = "/var/lib/mysql"
RUN_DIR = "/run/mysqld"
CONF_DIR = "/etc/mysql/conf.d"
SSL_DIR = "/etc/mysql/ssl"
INITDB_DIR = "/docker-entrypoint-initdb.d"


def container_mycnf(tags: list[str] | tuple[str, ...], plan: ServicePlan,
                    settings: Mapping[str, Any] | None = None) -> str:
    """my.cnf shared by every container; server_id and report_host come from the start command.
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


def admin_init_script() -> str:
    """Init script (templates/kube/admin-init.sh) creating the admin account from the container's env."""
    return (templates_dir() / "kube" / "admin-init.sh").read_text()


def readiness_command() -> list[str]:
    """The image's own health check: connects and sees InnoDB initialised."""
    return ["healthcheck.sh", "--connect", "--innodb_initialized"]
