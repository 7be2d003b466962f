"""What this machine offers the tests (real mariadbd), decided once, and the test environment."""

from __future__ import annotations

import os
import shutil

import pytest

HAVE_MARIADB = shutil.which("mariadbd") is not None and shutil.which("mariadb-install-db") is not None
needs_mariadb = pytest.mark.skipif(not HAVE_MARIADB, reason="mariadbd / mariadb-install-db not installed")


def default_passphrase() -> None:
    """The committed stacks hold secure values under the README's example passphrase; engine runs
    started by tests inherit it. Tests about a missing or wrong passphrase pass their own env."""
    if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and not os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        os.environ["PULUMI_CONFIG_PASSPHRASE"] = "repman-example"
