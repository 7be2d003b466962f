"""The old name of ``repman.backends.container_bootstrap``, kept for Jobs and containers that
stacks deployed before the rename still run (their command names this module)."""

from __future__ import annotations

import sys

from repman.backends.container_bootstrap import main, run, wait_reachable

__all__ = ["main", "run", "wait_reachable"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
