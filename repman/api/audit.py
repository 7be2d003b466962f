"""The audit trail: who did what, from where, with what outcome, for every API call.

One JSON object a line (control characters in a path cannot forge a line), in
``api-audit-log`` when set, and the last entries in memory for GET /api/audit.
Never a credential: no header, no body, only the method, path and status.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from typing import Any

KEEP = 2000


class AuditLog:
    def __init__(self, path: str = "") -> None:
        self.path = path
        self._recent: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._lock = threading.Lock()
        if path:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.close(fd)

    def record(self, who: str, source: str, method: str, path: str, status: int,
               cluster: str | None = None, detail: str = "") -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "user": who, "from": source,
                 "method": method, "path": path[:512], "cluster": cluster, "status": status,
                 "outcome": "ok" if status < 400 else "refused" if status < 500 else "error"}
        if detail:
            entry["detail"] = detail[:200]
        line = json.dumps(entry, sort_keys=True)
        with self._lock:
            self._recent.append(entry)
            if self.path:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")

    def entries(self, clusters: frozenset[str] | None, limit: int = 200) -> list[dict[str, Any]]:
        """The latest entries a reader may see: its clusters' only (logins too when it sees every cluster)."""
        with self._lock:
            rows = [e for e in self._recent if clusters is None or e["cluster"] in clusters]
        return rows[-limit:]
