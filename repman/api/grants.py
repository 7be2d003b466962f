"""API grants (replication-manager's names) and the roles that group them.

A user holds grants on a set of clusters (its tenant view); everything the API
does is checked as "grant G on cluster C". Roles keep their old meaning:
``viewer`` reads, ``operator`` also operates; ``auditor`` reads the audit log.
"""

from __future__ import annotations

GRANTS: dict[str, str] = {
    "cluster-show": "read the cluster's status and the dashboard",
    "cluster-switchover": "POST switchover",
    "cluster-failover": "POST failover",
    "cluster-settings": "change cluster settings (reset the failover counter)",
    "cluster-rolling-restart": "POST rolling-restart: restart every server, one switchover",
    "db-maintenance": "put a server in maintenance or take it out",
    "db-reseed": "re-seed a server from a backup or a donor",
    "backup": "take backups",
    "restore": "restore a backup",
    "auditor": "read the audit log (GET /api/audit), for the user's clusters",
}

_VIEWER = frozenset({"cluster-show"})
_OPERATOR = _VIEWER | {"cluster-switchover", "cluster-failover", "cluster-settings", "cluster-rolling-restart",
                       "db-maintenance", "db-reseed", "backup", "restore"}
ROLES: dict[str, frozenset[str]] = {
    "viewer": _VIEWER,
    "operator": frozenset(_OPERATOR),
    "auditor": _VIEWER | {"auditor"},
    "admin": frozenset(GRANTS),
}


def role_with(grant: str) -> str:
    """The smallest role holding ``grant`` (for error messages)."""
    for name in ("viewer", "operator", "auditor", "admin"):
        if grant in ROLES[name]:
            return name
    return "admin"
