"""Every shared pytest fixture, loaded as a plugin by ``tests/conftest.py`` (``pytest_plugins``).

Test modules never import a fixture: they name it as an argument and pytest finds it here.
Each fixture tears down what it started, also when the test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from repman.local.mariadb import pid_alive
from repman.local.ports import free_port_block
from repman.local.testbed import Testbed
from testkit.cluster import HACluster, make_cluster
from testkit.docker_engine import Images, build_images, docker_answers, missing_tools, remove_cluster, stop_dockerd
from testkit.docker_stack import DockerStack
from testkit.env import HAVE_MARIADB
from testkit.etcd import HAVE_ETCD, EtcdCluster
from testkit.local_stack import engine


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


@pytest.fixture
def bed(testbed: Testbed) -> Testbed:
    """The testbed bootstrapped: a primary and two replicas (a module may define its own ``bed``)."""
    testbed.bootstrap()
    return testbed


@pytest.fixture
def seeded_bed(bed: Testbed) -> Testbed:
    """The bootstrapped testbed with the watcher tests' table and five rows on the primary."""
    from testkit.watcherbed import insert, make_table

    make_table(bed, bed.addresses[0])
    insert(bed, bed.addresses[0], 5)
    return bed


@pytest.fixture
def etcd_factory(tmp_path: Path) -> Iterator[Callable[..., EtcdCluster]]:
    """``make(size=1|3) -> EtcdCluster`` of real etcd-server members; all destroyed at the end."""
    if not HAVE_ETCD:
        pytest.skip("etcd not installed")
    made: list[EtcdCluster] = []

    def make(size: int = 1, **kw: Any) -> EtcdCluster:
        cluster = EtcdCluster(tmp_path / f"etcd{len(made)}", size=size, **kw)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.destroy()


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., HACluster]]:
    """``make(**kw) -> HACluster``; every cluster made is destroyed at the end, even on failure."""
    made: list[HACluster] = []

    def make(**kw: Any) -> HACluster:
        cluster = make_cluster(tmp_path / f"c{len(made)}", **kw)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.bed.destroy()


@pytest.fixture(scope="session")
def docker_images() -> Iterator[Images]:
    """The local images, built once per session; a dockerd started for the session is stopped after it."""
    why = missing_tools()
    if why:
        pytest.skip(why)
    ours = not docker_answers()
    yield build_images()
    if ours:
        stop_dockerd()


@pytest.fixture
def docker_stack(docker_images: Images, tmp_path: Path) -> Iterator[DockerStack]:
    """One Docker-backend cluster (not yet up); all its containers, volumes and network removed after."""
    s = DockerStack(docker_images, tmp_path / "state")
    yield s
    remove_cluster(s.name)


@pytest.fixture
def local_stack() -> Iterator[tuple[list[str], Path]]:
    """``(overrides, state_dir)`` for the local stack on free ports; brought down (or killed) after."""
    # Short on purpose: unix socket paths (HAProxy's admin socket: 97 bytes) must fit.
    tmp_path = Path(tempfile.mkdtemp(prefix="repman-e2e-"))
    base = free_port_block(3)
    proxy = free_port_block(2)
    overrides = [f"repman:db-servers-base-port={base}", f"repman:prov-state-dir={tmp_path / 'state'}",
                 f"repman:haproxy-write-port={proxy}", f"repman:haproxy-read-port={proxy + 1}",
                 f"repman:api-port={free_port_block(1)}"]
    yield overrides, tmp_path / "state"
    engine("down", overrides=overrides, check=False)
    # Last resort if down failed: no mariadbd, haproxy or watcher may outlive the test.
    for pid_file in [*(tmp_path / "state").glob("**/*.pid")]:
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(tmp_path, ignore_errors=True)
