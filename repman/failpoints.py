"""Named fault-injection points, for the nemesis tests: kill -9 of the watcher *exactly*
between two steps of an operation (after the promotion, before the replicas are re-pointed),
which a random kill finds once in hundreds of rounds.

Off unless ``REPMAN_FAILPOINTS`` names a point: ``failover:after-promote=kill`` sends the
process SIGKILL there, ``...=sleep:2.5`` stalls it (a slow step). Entries are separated by
commas. Checking costs one environment lookup per step.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "REPMAN_FAILPOINTS"


def hit(point: str) -> None:
    """Act on ``point`` when the environment names it; nothing otherwise."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    for entry in spec.split(","):
        name, _, action = entry.strip().partition("=")
        if name != point:
            continue
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action.startswith("sleep:"):
            time.sleep(float(action.removeprefix("sleep:")))
