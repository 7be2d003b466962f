"""Shared support for the tests and the benchmarks (not shipped in the wheel).

Tests and ``bench/`` import from here, never from ``tests``; pytest fixtures live in
``testkit.fixtures`` and reach the tests through ``pytest_plugins`` in ``tests/conftest.py``.
One module a purpose: ``polling`` (wait_until), ``env`` (what this machine has), ``cluster``
(HACluster on a real Testbed), ``watcherbed`` (config and SQL helpers for a Testbed),
``pulumi_mocks`` (the one Pulumi mock recorder), ``standins`` (recording stand-ins for services).
"""
