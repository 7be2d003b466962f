"""The rule that splits the fast subset from the slow tests (``pytest -m "not slow"``), as a pytest plugin.

A test is slow when it needs real servers or machines: it uses a fixture that starts them,
carries ``needs_mariadb`` or ``soak``, or lives in a module built on a heavy stand-in (network
namespaces, sshd, Docker, podman). The rule is applied at collection, so nobody hand-marks
hundreds of tests; ``@pytest.mark.slow`` covers what it misses (a real haproxy, a subprocess
engine run...). ``tests/test_harness.py`` checks the split stays meaningful and that no test imports another.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from testkit.env import needs_mariadb

# Fixtures that start real mariadbd, etcd, engines or containers.
SLOW_FIXTURES = frozenset({"testbed", "cluster_factory", "etcd_factory", "docker_images", "docker_stack",
                           "local_stack"})
# Support modules whose users drive real daemons or machines.
SLOW_SUPPORT = frozenset({"testkit.netns", "testkit.sshd", "testkit.docker_engine", "testkit.docker_stack",
                          "testkit.podman", "testkit.local_stack", "testkit.cluster", "testkit.provider_host",
                          "testkit.etcd"})

# Test modules that start real daemons without the fixtures above (haproxy, slapproxy, a Spider
# node, a ProxySQL-protocol server, the engine as a subprocess), build the wheel, or run a whole
# tool per test (the `repman` command, lint-imports, nix-instantiate): measured with
# `pytest -m "not slow" --durations=0` summed per module, each took 4 s or more.
SLOW_MODULES = frozenset({"test_haproxy_e2e", "test_spider", "test_haproxy", "test_backend_slapos", "test_scripts_e2e",
                          "test_haproxy_provider", "test_spider_provider", "test_proxysql", "test_ci_examples",
                          "test_packaging", "test_cli", "test_layers", "test_nix_eval",
                          "test_metrics"})  # a real Prometheus server


def _uses_slow_support(module: ModuleType | None) -> bool:
    if module is None:
        return False
    for value in vars(module).values():
        owner = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        if owner in SLOW_SUPPORT:
            return True
    return False


def is_slow(item: pytest.Item) -> bool:
    """Whether ``item`` belongs to the slow set (see the module docstring for the rule)."""
    if item.get_closest_marker("slow") or item.get_closest_marker("soak"):
        return True
    if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    if any(mark == needs_mariadb.mark for mark in item.iter_markers("skipif")):
        return True
    module = getattr(item, "module", None)
    if module is not None and module.__name__.rpartition(".")[2] in SLOW_MODULES:
        return True
    return _uses_slow_support(module)


# Modules sharing one container engine and its images (built once per pytest worker by a session
# fixture under fixed tags): with pytest-xdist they run on one worker, one after the other.
CONTAINER_MODULES = frozenset({"test_docker_images", "test_docker_stack", "test_docker_faults",
                               "test_docker_engine_provider", "test_podman_kube", "test_backend_docker"})


def xdist_group(item: pytest.Item) -> str:
    """The worker group of ``item`` under ``pytest -n N --dist loadgroup``: its whole module (module
    fixtures set up once, its tests in their order), and one group for the container modules."""
    module = item.nodeid.partition("::")[0]
    name = module.rpartition("/")[2].removesuffix(".py")
    return "containers" if name in CONTAINER_MODULES else module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_slow(item) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
