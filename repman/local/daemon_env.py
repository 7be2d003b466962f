"""The environment a detached daemon (mariadbd, haproxy, the watcher) starts with.

Daemons outlive the command that started them, and ``/proc/<pid>/environ`` is
readable for their whole life. The provisioning process carries the whole stack
configuration (``PULUMI_CONFIG``, credentials included) and whatever secrets the
user's shell exports, so a daemon gets only an allow-list of harmless variables.
"""

from __future__ import annotations

import os
from typing import Mapping

ALLOWED = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "PYTHONPATH"})
ALLOWED_PREFIXES = ("LC_",)


def daemon_environment(extra: Mapping[str, str] | None = None,
                       source: Mapping[str, str] | None = None) -> dict[str, str]:
    """Allow-listed variables of ``source`` (default: this process) plus ``extra``."""
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items() if k in ALLOWED or k.startswith(ALLOWED_PREFIXES)}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(extra or {})
    return env
