"""The mark a local node leaves when its new my.cnf needs a restart (``prov-db-apply-dynamic-config``).

The node writes it (``repman.local.node``), the rolling restart reads and clears it
(``repman.rolling_restart``): a file of the node's own run dir, so it lives with the
local process control and the node imports nothing of the restart's orchestration.
"""

from __future__ import annotations

from typing import Sequence

from repman.local.mariadb import LocalServerPaths

RESTART_MARKER = "restart-pending"


def mark_restart_pending(paths: LocalServerPaths, keys: Sequence[str]) -> None:
    """my.cnf changed in a way only a restart applies; the rolling restart clears the mark."""
    (paths.run_dir / RESTART_MARKER).write_text(" ".join(keys) + "\n")


def restart_pending(paths: LocalServerPaths) -> bool:
    return (paths.run_dir / RESTART_MARKER).exists()
