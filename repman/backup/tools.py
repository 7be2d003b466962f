"""Absolute paths of the MariaDB client tools the backups run.

Resolved once per call from PATH, so a missing tool is a one-line error naming it
instead of a FileNotFoundError deep in a pipeline, and no process is started by a
bare name that a changed working directory or PATH could shadow.
"""

from __future__ import annotations

import shutil

from repman.errors import RepmanError


def installed(name: str) -> str:
    """The absolute path of ``name`` on PATH, or a one-line error."""
    path = shutil.which(name)
    if path is None:
        raise RepmanError(f"{name} is not installed (Debian: mariadb-client / mariadb-backup)")
    return path
