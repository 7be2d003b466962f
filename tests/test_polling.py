"""testkit.polling.wait_until: the one helper every test and benchmark polls with."""

from __future__ import annotations

import itertools
import time

import pytest

from testkit.polling import wait_until


def test_returns_the_first_truthy_value():
    calls = itertools.count(1)
    assert wait_until(lambda: next(calls) >= 3 and "ready", timeout=5, every=0.001) == "ready"
    assert next(calls) == 4  # called exactly three times


def test_timeout_names_what_and_the_last_value():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"waiting for the replica \(last: 0\)"):
        wait_until(lambda: 0, timeout=0.2, what="the replica", every=0.01)
    assert 0.2 <= time.monotonic() - started < 2


def test_what_may_be_computed_at_timeout():
    state = {"log": "starting"}

    def describe() -> str:
        return f"log says {state['log']}"

    def check() -> bool:
        state["log"] = "port in use"
        return False

    with pytest.raises(AssertionError, match="log says port in use"):
        wait_until(check, timeout=0.05, what=describe, every=0.01)


def test_ignored_exceptions_mean_not_yet_and_become_the_cause():
    calls = itertools.count(1)

    def flaky() -> int:
        n = next(calls)
        if n < 3:
            raise ConnectionRefusedError(f"attempt {n}")
        return n

    assert wait_until(flaky, timeout=5, every=0.001, ignore=(OSError,)) == 3

    def down() -> bool:
        raise ConnectionRefusedError("down")

    with pytest.raises(AssertionError, match="ConnectionRefusedError") as info:
        wait_until(down, timeout=0.05, every=0.01, ignore=(OSError,))
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_other_exceptions_propagate_at_once():
    started = time.monotonic()

    def died() -> bool:
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="exited"):
        wait_until(died, timeout=30, ignore=(OSError,))
    assert time.monotonic() - started < 1
