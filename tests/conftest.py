"""The test suite's only conftest: shared fixtures and the slow-test rule come from testkit plugins."""

from __future__ import annotations

from testkit.env import default_passphrase

pytest_plugins = ["testkit.fixtures", "testkit.markers"]

default_passphrase()
