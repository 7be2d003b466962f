"""Per-user databases on a running cluster: one database, one user that must use TLS.

What a shared-instance request becomes on the cluster's primary (replicated to the
replicas like any write): ``CREATE DATABASE``, a user limited to that database and
``REQUIRE SSL``, so it cannot log in over plain TCP and sees no other tenant's data.
Idempotent: a repeated request changes nothing but a rotated password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from repman.db import Credential, ServerAddress, execute, query, session
from repman.errors import ConfigError
from repman.password_hash import native_password_hash

_IDENT = re.compile(r"^[A-Za-z0-9_]{1,64}$")
RESERVED = {"mysql", "information_schema", "performance_schema", "sys"}


@dataclass(frozen=True)
class SharedDatabaseGrant:
    database: str
    user: str
    password: str

    def __repr__(self) -> str:
        return f"SharedDatabaseGrant(database={self.database!r}, user={self.user!r}, password='***')"


def derive_password(secret: str, reference: str, length: int = 24) -> str:
    """A stable per-tenant password: the same request always yields the same one (HMAC)."""
    digest = hmac.new(secret.encode(), f"repman-shared-db:{reference}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:length]


def validate(database: str, user: str) -> None:
    if not _IDENT.match(database):
        raise ConfigError("name", f"database {database!r}: letters, digits and _ only (up to 64)")
    if database.lower() in RESERVED:
        raise ConfigError("name", f"database {database!r} is reserved")
    if not _IDENT.match(user) or len(user) > 80:
        raise ConfigError("user", f"user {user!r}: letters, digits and _ only")


def create_shared_database(primary: ServerAddress, admin: Credential, grant: SharedDatabaseGrant) -> list[str]:
    """Create (or bring back in line) the database and its TLS-only user. Returns what changed."""
    validate(grant.database, grant.user)
    changes: list[str] = []
    with session(primary, admin, timeout=5) as conn:
        if not query(conn, "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (grant.database,)):
            execute(conn, f"CREATE DATABASE `{grant.database}`")
            changes.append(f"created database {grant.database}")
        if not query(conn, "SELECT 1 FROM mysql.user WHERE User = %s AND Host = '%%'", (grant.user,)):
            changes.append(f"created user {grant.user}")
        hashed = native_password_hash(grant.password)  # binlogged: only the hash, never the clear password
        execute(conn, "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY PASSWORD %s REQUIRE SSL", (grant.user, hashed))
        execute(conn, "ALTER USER %s@'%%' IDENTIFIED BY PASSWORD %s REQUIRE SSL", (grant.user, hashed))
        execute(conn, f"GRANT ALL PRIVILEGES ON `{grant.database}`.* TO %s@'%%'", (grant.user,))
    return changes


def drop_shared_database(primary: ServerAddress, admin: Credential, database: str, user: str) -> None:
    """Remove a tenant (its request was destroyed): the user first, then the data."""
    validate(database, user)
    with session(primary, admin, timeout=5) as conn:
        execute(conn, "DROP USER IF EXISTS %s@'%%'", (user,))
        execute(conn, f"DROP DATABASE IF EXISTS `{database}`")
