"""Routers and scripts accept either a ``logging.Logger`` or a plain callable as their log."""

from __future__ import annotations

import logging
from typing import Any, Callable

Log = logging.Logger | Callable[[str], Any] | None


def emit(log: Log, message: str, level: int = logging.INFO) -> None:
    """Write one line; a broken log sink must never break routing."""
    try:
        if log is None:
            logging.getLogger("repman.routing").log(level, message)
        elif isinstance(log, logging.Logger):
            log.log(level, message)
        else:
            log(message)
    except Exception:  # noqa: BLE001 - logging must not fail a failover
        pass
