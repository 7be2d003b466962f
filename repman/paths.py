"""Where templates and service plans live, from a checkout or an installed wheel.

A wheel carries them under ``repman/_data`` (see pyproject's force-include); a
checkout or editable install keeps them at the repository's top level.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory holding ``templates`` or ``service_plans``."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"repman data directory {name!r} not found next to {_PACKAGE_DIR}")


def templates_dir() -> Path:
    return data_dir("templates")


def service_plans_dir() -> Path:
    return data_dir("service_plans")
