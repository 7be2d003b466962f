"""The watcher file's top-level ``api:`` section -> validated ``ApiConfig``.

The watcher reads the file and keeps this section as it found it
(``WatcherConfig.api_section``): the API's users, TLS and tokens are this
package's business, and the watcher imports nothing of it. ``repman.cli``
ties both together when it loads the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from repman.api.auth import ApiUser, parse_users
from repman.api.keys import API_KEYS
from repman.errors import ConfigError
from repman.keys import validate_section
from repman.secret_store import key_path_in_effect
from repman.watcher.config import WatcherConfig


@dataclass
class ApiConfig:
    """The optional top-level ``api:`` section."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 10005
    tls_cert: str = ""
    tls_key: str = ""
    anonymous_read: bool = False
    anonymous_health: bool = True
    users: dict[str, ApiUser] = field(default_factory=dict)
    tls_client_ca: str = ""
    jwt_secret: str = field(default="", repr=False)
    jwt_ttl: float = 900.0
    login_max_failures: int = 5
    login_window: float = 60.0
    audit_log: str = ""

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)


def load_api(raw: Any) -> ApiConfig:
    """Validate one ``api:`` section; no section means the API is off."""
    if raw is None:
        return ApiConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("api", f"expected a mapping of api-* keys, got {raw!r}")
    plain = {k: v for k, v in raw.items() if k != "api-users"}
    values = validate_section(plain, (API_KEYS,), where="api")
    users = parse_users(raw.get("api-users"), "api.api-users")
    if bool(values["api-tls-cert"]) != bool(values["api-tls-key"]):
        raise ConfigError("api.api-tls-key" if values["api-tls-cert"] else "api.api-tls-cert",
                          "api-tls-cert and api-tls-key go together")
    if values["api-tls-client-ca"] and not values["api-tls-cert"]:
        raise ConfigError("api.api-tls-client-ca", "mutual TLS needs api-tls-cert and api-tls-key")
    for key in ("api-tls-cert", "api-tls-key", "api-tls-client-ca"):
        if values[key] and not Path(values[key]).is_file():
            raise ConfigError(f"api.{key}", f"{values[key]!r} is not a readable file")
    return ApiConfig(
        enabled=True, bind=values["api-bind"], port=values["api-port"],
        tls_cert=values["api-tls-cert"], tls_key=values["api-tls-key"],
        anonymous_read=values["api-anonymous-read"], anonymous_health=values["api-anonymous-health"],
        users=users, tls_client_ca=values["api-tls-client-ca"], jwt_secret=values["api-jwt-secret"],
        jwt_ttl=values["api-jwt-ttl"], login_max_failures=values["api-login-max-failures"],
        login_window=values["api-login-window"], audit_log=values["api-audit-log"],
    )


def api_config(wc: WatcherConfig) -> ApiConfig:
    """The ``api:`` section of a loaded watcher file.

    ``{encrypted: ...}`` api-users passwords use the (first) cluster's monitoring-key-path,
    as repman's one key."""
    key_path = next((c["monitoring-key-path"] for c in wc.clusters.values() if c.get("monitoring-key-path")), "")
    with key_path_in_effect(key_path):
        return load_api(wc.api_section)
