"""Shared fixtures: real local mariadbd clusters and free ports, always torn down."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from repman.local.ports import free_port_block, port_is_free  # noqa: F401  (used by tests)
from repman.local.testbed import Testbed

# The committed stacks hold secure values under the README's example passphrase; engine runs
# started by tests inherit it. Tests about a missing or wrong passphrase pass their own env.
if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and not os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
    os.environ["PULUMI_CONFIG_PASSPHRASE"] = "repman-example"

HAVE_MARIADB = shutil.which("mariadbd") is not None and shutil.which("mariadb-install-db") is not None
needs_mariadb = pytest.mark.skipif(not HAVE_MARIADB, reason="mariadbd / mariadb-install-db not installed")


@pytest.fixture
def testbed(tmp_path: Path) -> Iterator[Testbed]:
    """A bootstrapped-ready 3-node cluster of real mariadbd (not yet bootstrapped)."""
    if not HAVE_MARIADB:
        pytest.skip("mariadbd not installed")
    bed = Testbed(base=tmp_path / "bed")
    try:
        bed = Testbed.create(tmp_path / "bed", count=3)
        yield bed
    finally:
        bed.destroy()
