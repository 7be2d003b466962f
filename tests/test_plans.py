"""Service plans: the shipped ladder loads, and bad plan files give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from repman.errors import ConfigError
from repman.plans import get_plan, load_plans

ROW = ("  - name: {name}\n    db-nodes: {nodes}\n    memory-mb: 1024\n    cores: 1\n    data-size-gb: 10\n"
       "    system-size-gb: 5\n    iops: 300\n    proxy-cores: 1\n    proxy-data-size-gb: 1\n")


def test_shipped_ladder():
    plans = load_plans()
    for nodes in (1, 2, 3):
        for tier in ("tiny", "small", "medium", "large"):
            plan = plans[f"x{nodes}.{tier}"]
            assert plan.db_nodes == nodes
    tiny, large = plans["x3.tiny"], plans["x3.large"]
    assert tiny.memory_mb < large.memory_mb and tiny.cores < large.cores and tiny.iops < large.iops
    assert set(tiny.as_dict()) == {"name", "db-nodes", "memory-mb", "cores", "data-size-gb", "system-size-gb",
                                   "iops", "proxy-cores", "proxy-data-size-gb"}


def test_unknown_plan_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        get_plan("x9.foo")
    assert str(info.value).startswith("prov-service-plan: unknown service plan 'x9.foo' (known: x1.large")


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "plans.yaml").write_text("plans:\n" + body)
    return tmp_path


@pytest.mark.parametrize("body, message", [
    (ROW.format(name="x2.tiny", nodes=3), "x2.tiny.db-nodes: is 3 but the plan name says 2"),
    (ROW.format(name="x0.tiny", nodes=0), "x0.tiny.db-nodes: node count must be at least 1, got 0"),
    (ROW.format(name="tiny", nodes=1), "must look like x<nodes>.<tier>"),
    (ROW.format(name="x1.a", nodes=1) + ROW.format(name="x1.a", nodes=1), "x1.a: duplicate plan name"),
    (ROW.format(name="x1.a", nodes=1).replace("cores: 1", "cores: many", 1), "x1.a.cores: must be a non-negative"),
    (ROW.format(name="x1.a", nodes=1) + "    colour: red\n", "colour: unknown plan field"),
])
def test_bad_plan_files(tmp_path, body, message):
    with pytest.raises(ConfigError, match=None) as info:
        load_plans(write(tmp_path, body))
    assert message in str(info.value)


def test_plans_must_be_a_list(tmp_path):
    (tmp_path / "p.yaml").write_text("plans: {x1.a: 1}\n")
    with pytest.raises(ConfigError, match="p.yaml:plans: must be a list of plans"):
        load_plans(tmp_path)
