"""Which servers the watcher must reach over verified TLS, and with which CA.

Kept apart from ``repman.db`` so connect() only asks ``tls_arguments(address)``:
a cluster with ``db-servers-tls-ca-cert`` registers its servers when its config
is loaded, and every later connection to them verifies the server certificate
and its host name (an IP address must be in the certificate's SAN).
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from repman.db import ServerAddress

_lock = threading.Lock()
_ca_of: dict[tuple[str, int], str] = {}
_contexts: dict[tuple[str, int], ssl.SSLContext] = {}


def register(servers: Iterable[ServerAddress], ca_file: str) -> None:
    """Verify ``servers`` against ``ca_file`` from now on (empty: stop requiring TLS)."""
    with _lock:
        for s in servers:
            if ca_file:
                _ca_of[(s.host, s.port)] = ca_file
            else:
                _ca_of.pop((s.host, s.port), None)


def context_for(ca_file: str) -> ssl.SSLContext:
    """One verifying context per CA file version (building one costs ~1 ms, a connect should
    not); a rewritten file (``repman certificates rotate``) gives a new context."""
    try:
        version = os.stat(ca_file).st_mtime_ns
    except OSError:
        version = 0
    with _lock:
        ctx = _contexts.get((ca_file, version))
        if ctx is None:
            ctx = ssl.create_default_context(cafile=ca_file)
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
            for stale in [k for k in _contexts if k[0] == ca_file]:
                del _contexts[stale]
            _contexts[(ca_file, version)] = ctx
        return ctx


def tls_arguments(address: ServerAddress) -> dict[str, Any]:
    """pymysql keyword arguments for ``address``: a verifying TLS context, or nothing."""
    with _lock:
        ca_file = _ca_of.get((address.host, address.port))
    if not ca_file:
        return {}
    return {"ssl": context_for(ca_file)}
