"""In CI every tool the suite needs must be there: a skipped test proves nothing.

Tests skip when a binary is absent (a developer machine may lack chromium), so
`.ci/run` sets REPMAN_REQUIRE_TOOLS=1 and this test turns any absence into a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

BINARIES = (
    "mariadbd", "mariadb-install-db", "mariadb-binlog", "mariadb-dump", "mariadb", "haproxy",
    "sysbench", "ip", "nix-instantiate", "chromium", "dockerd", "debootstrap", "podman",
    "mariadb-backup", "mbstream", "restic", "mydumper",  # backups and PITR (issue 11)
)
FILES = (
    "/usr/lib/mysql/plugin/ha_spider.so",
)


def _sshd() -> str | None:
    return shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


@pytest.mark.skipif(os.environ.get("REPMAN_REQUIRE_TOOLS") != "1",
                    reason="only enforced where REPMAN_REQUIRE_TOOLS=1 (CI)")
def test_every_tool_the_suite_needs_is_installed() -> None:
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    missing += [f for f in FILES if not Path(f).exists()]
    if _sshd() is None:
        missing.append("sshd")
    from testkit.standins.libconfig_check import load_libconfig

    if load_libconfig() is None:
        missing.append("libconfig9")
    if shutil.which("slapos", path=str(Path(sys.executable).parent)) is None and shutil.which("slapos") is None:
        missing.append("slapos (slapos.core)")
    assert not missing, f"missing in CI: {', '.join(missing)} (scripts/setup.sh must install them)"
    assert os.geteuid() == 0, "CI runs as root (network namespaces, sshd)"
