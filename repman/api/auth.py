"""API users: salted password hashes, grants per cluster, basic and bearer authentication.

Passwords never sit in the config in clear: either a PBKDF2 hash (made by
``repman hash-password``) or a reference to an environment variable or file.
Successful checks are cached by a keyed digest so a request does not pay the
PBKDF2 cost twice, and nothing reversible is kept in memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from repman.api.grants import GRANTS, ROLES as ROLE_GRANTS
from repman.errors import ConfigError
from repman.keys import resolve_secret_reference

if TYPE_CHECKING:
    from repman.api.tokens import TokenIssuer

ROLES = tuple(ROLE_GRANTS)
SCHEME = "pbkdf2-sha256"
ITERATIONS = 120_000


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """``pbkdf2-sha256$<iterations>$<salt b64>$<digest b64>``."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


_DUMMY_HASH = hash_password("repman-no-such-user", salt=b"\0" * 16)


def check_hash_format(stored: str, key: str) -> None:
    parts = stored.split("$")
    ok = len(parts) == 4 and parts[0] == SCHEME and parts[1].isdigit()
    if ok:
        try:
            _unb64(parts[2]), _unb64(parts[3])
        except (ValueError, TypeError):
            ok = False
    if not ok:
        shown = stored[:20] + ("..." if len(stored) > 20 else "")
        raise ConfigError(key, f"not a {SCHEME} hash (make one with `repman hash-password`), got {shown!r}")


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


@dataclass(frozen=True)
class ApiUser:
    name: str
    role: str
    password_hash: str
    grants: frozenset[str] = frozenset()
    clusters: frozenset[str] | None = None  # None: every cluster

    def __repr__(self) -> str:
        return f"ApiUser(name={self.name!r}, role={self.role!r})"

    def sees(self, cluster: str) -> bool:
        return self.clusters is None or cluster in self.clusters

    def may(self, grant: str, cluster: str | None = None) -> bool:
        """Holds ``grant`` (its role's or its own), on ``cluster`` when one is named."""
        if cluster is not None and not self.sees(cluster):
            return False
        if grant not in GRANTS and grant in ROLE_GRANTS:  # a role name: every grant of it (viewer/operator)
            return ROLE_GRANTS[grant] <= self.grants
        return grant in self.grants


def _names(raw: Any, key: str, allowed: Mapping[str, str] | None = None) -> frozenset[str]:
    if isinstance(raw, str):
        raw = [v.strip() for v in raw.split(",") if v.strip()]
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise ConfigError(key, f"expected a list of names, got {raw!r}")
    if allowed is not None:
        for v in raw:
            if v not in allowed:
                raise ConfigError(key, f"unknown grant {v!r} (known: {', '.join(allowed)})")
    return frozenset(raw)


def parse_users(raw: Any, where: str = "api.api-users") -> dict[str, ApiUser]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"expected a mapping of user name to {{role, password-hash}}, got {raw!r}")
    users: dict[str, ApiUser] = {}
    for name, spec in raw.items():
        key = f"{where}.{name}"
        if not isinstance(name, str) or not name or ":" in name:
            raise ConfigError(key, "a user name must be a non-empty string without ':'")
        if not isinstance(spec, Mapping):
            raise ConfigError(key, f"expected {{role, password-hash}}, got {spec!r}")
        unknown = set(spec) - {"role", "password-hash", "password", "grants", "clusters"}
        if unknown:
            raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown key")
        role = spec.get("role", "viewer")
        if role not in ROLES:
            raise ConfigError(f"{key}.role", f"{role!r} is not one of {', '.join(ROLES)}")
        if ("password-hash" in spec) == ("password" in spec):
            raise ConfigError(key, "give exactly one of password-hash or password ({env: VAR} / {file: PATH})")
        if "password-hash" in spec:
            stored = resolve_secret_reference(spec["password-hash"], f"{key}.password-hash")
            if not isinstance(stored, str):
                raise ConfigError(f"{key}.password-hash", "expected a string")
            check_hash_format(stored, f"{key}.password-hash")
        else:
            ref = spec["password"]
            if not isinstance(ref, Mapping):
                raise ConfigError(f"{key}.password",
                                  "inline passwords are refused: use password-hash, {env: VAR} or {file: PATH}")
            clear = resolve_secret_reference(ref, f"{key}.password")
            if not clear:
                raise ConfigError(f"{key}.password", "the referenced password is empty")
            stored = hash_password(str(clear))
        grants = ROLE_GRANTS[role] | _names(spec.get("grants", []), f"{key}.grants", GRANTS)
        clusters = None if spec.get("clusters") in (None, "*") else _names(spec["clusters"], f"{key}.clusters")
        users[name] = ApiUser(name, role, stored, grants, clusters)
    return users


class Authenticator:
    """Checks ``Authorization: Basic`` (scripts) and ``Bearer`` (tokens from POST /api/login) headers."""

    def __init__(self, users: Mapping[str, ApiUser], tokens: TokenIssuer | None = None) -> None:
        self.users = dict(users)
        self.tokens = tokens
        self._pepper = os.urandom(32)
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def basic_name(self, header: str | None) -> str | None:
        """The user name a Basic header claims (for throttling), verified or not."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            return base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return None

    def authenticate(self, header: str | None) -> ApiUser | None:
        if header and header.startswith("Bearer ") and self.tokens is not None:
            name = self.tokens.user_of(header[7:].strip())
            return self.users.get(name) if name else None
        if not header or not header.startswith("Basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        return self.check(name, password) if sep else None

    def check(self, name: str, password: str) -> ApiUser | None:
        user = self.users.get(name)
        if user is None:
            verify_password(password, _DUMMY_HASH)  # same cost as a known name: no user enumeration by timing
            return None
        token = hmac.new(self._pepper, f"{name}\0{password}\0{user.password_hash}".encode(), "sha256").digest()
        with self._lock:
            if token in self._ok:
                return user
        if not verify_password(password, user.password_hash):
            return None
        with self._lock:
            if len(self._ok) > 1024:
                self._ok.clear()
            self._ok.add(token)
        return user
