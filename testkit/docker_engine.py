"""A real Docker engine for the container tests: images built once per session, dockerd started if needed.

``scripts/build-images.sh`` builds the local Debian base, the MariaDB stand-in and the
watcher image (skipping any whose inputs did not change) and starts ``dockerd`` when none
answers; a dockerd started for this session is stopped at its end. Without ``dockerd`` or
``debootstrap`` (``apt-get install docker.io debootstrap``) the tests skip, saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_IMAGE = "repman/mariadb:10.11-standin"
WATCHER_IMAGE = "repman/watcher:0.1.0"
PROXY_IMAGE = "repman/haproxy:2.6-standin"
DOCKER_ROOT = Path(os.environ.get("REPMAN_DOCKER_ROOT", "/var/lib/repman-docker"))


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def missing_tools() -> str:
    if docker_answers():
        return ""
    need = [t for t in ("docker", "dockerd", "debootstrap") if shutil.which(t) is None]
    if need:
        return f"{', '.join(need)} not installed (apt-get install docker.io debootstrap; scripts/setup.sh does)"
    if os.geteuid() != 0:
        return "no Docker engine answers and starting dockerd needs root"
    return ""


@dataclass
class Images:
    db: str
    watcher: str
    proxy: str
    build_seconds: float


def build_images() -> Images:
    started = time.monotonic()
    proc = subprocess.run([str(ROOT / "scripts" / "build-images.sh")], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    if proc.returncode != 0:
        raise AssertionError(f"scripts/build-images.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return Images(DB_IMAGE, WATCHER_IMAGE, PROXY_IMAGE, time.monotonic() - started)


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def remove_cluster(name: str) -> None:
    """Everything labelled for cluster ``name`` (containers, volumes, network): test clean-up."""
    ids = docker("ps", "-aq", "--filter", f"label=repman.cluster={name}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    vols = docker("volume", "ls", "-q", "--filter", f"label=repman.cluster={name}", check=False).stdout.split()
    if vols:
        docker("volume", "rm", "-f", *vols, check=False)
    nets = docker("network", "ls", "-q", "--filter", f"label=repman.cluster={name}", check=False).stdout.split()
    if nets:
        docker("network", "rm", *nets, check=False)


def stop_dockerd() -> None:
    """Stop the dockerd whose pid file ``build-images.sh`` wrote (one this session started)."""
    pidfile = DOCKER_ROOT / "dockerd.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
