"""Keys of the top-level ``api:`` section of the watcher config (repman's names).

Users are a mapping, not a scalar key, so ``api-users`` is validated by
``repman.api.auth.parse_users``; this table lists it for ``repman keys``.
"""

from __future__ import annotations

from repman.keys import Key, key_table

API_KEYS = key_table(
    Key("api-bind", "str", "127.0.0.1", "address the HTTP API and dashboard listen on"),
    Key("api-port", "int", 10005, "port of the HTTP API (0: any free port)", minimum=0, maximum=65535),
    Key("api-tls-cert", "path", "", "PEM certificate: serve HTTPS when set with api-tls-key"),
    Key("api-tls-key", "path", "", "PEM private key of api-tls-cert"),
    Key("api-anonymous-read", "bool", False,
        "let unauthenticated clients read status (GET); operations always need an operator"),
    Key("api-tls-client-ca", "path", "",
        "PEM CA: when set (with api-tls-cert), clients must present a certificate it signed (mutual TLS)"),
    Key("api-jwt-secret", "str", "",
        "HMAC key signing the tokens of POST /api/login (empty: a random key per process)", secret=True),
    Key("api-jwt-ttl", "float", 900.0, "seconds a login token is valid", minimum=10, maximum=86400),
    Key("api-login-max-failures", "int", 5,
        "failed logins per client address or user name within api-login-window before 429 (0: no limit)",
        minimum=0),
    Key("api-login-window", "float", 60.0, "seconds over which failed logins are counted", minimum=1),
    Key("api-audit-log", "path", "", "append every API call (who, from where, what, outcome) as JSON lines"),
    Key("api-anonymous-health", "bool", True,
        "let unauthenticated clients call /primary and /replica (HAProxy checks; status codes only)"),
)

# Documented here for `repman keys`; its value is a mapping checked by parse_users.
API_USERS_HELP = (
    "api-users: {<name>: {role: viewer|operator|auditor|admin, password-hash: <pbkdf2 hash> "
    "| password: {env: VAR} | password: {file: PATH}, grants: [<grant>...], clusters: [<name>...] (default all)}}"
)
