"""The bootstrap run inside the nodes' network kept its old module name for deployed stacks."""

from __future__ import annotations

import subprocess
import sys

from repman.backends import container_bootstrap, kube_bootstrap


def test_the_old_name_runs_the_same_code():
    assert kube_bootstrap.main is container_bootstrap.main and kube_bootstrap.run is container_bootstrap.run


def test_the_old_name_still_runs_as_a_command():
    """A Job deployed before the rename runs ``python -m repman.backends.kube_bootstrap CONFIG``."""
    done = subprocess.run([sys.executable, "-m", "repman.backends.kube_bootstrap", "/nonexistent/repman.yaml"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    new = subprocess.run([sys.executable, "-m", "repman.backends.container_bootstrap", "/nonexistent/repman.yaml"],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == new.returncode != 0
    assert done.stderr == new.stderr and "/nonexistent/repman.yaml" in done.stderr
