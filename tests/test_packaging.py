"""The wheel carries templates and service plans, and an installed copy finds them."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="hatchling (test extra) builds the wheel without network")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=240,
    )
    (built,) = out.glob("repman-*.whl")
    return built


def test_wheel_contains_data_and_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "repman/_data/service_plans/plans.yaml" in names
    assert "repman/_data/templates/mycnf/base.cnf.j2" in names
    for tag in ("semisync", "innodb", "ssl"):
        assert f"repman/_data/templates/mycnf/tags/{tag}.cnf.j2" in names
    assert not any(n.startswith(("components/", "tests/")) for n in names)  # runtime package only
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "repman = repman.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_copy_finds_templates_and_plans(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=240)
    probe = (
        "import json, repman, repman.paths as p, repman.plans as pl, repman.mycnf as m;"
        "print(json.dumps({'pkg': repman.__file__, 'templates': str(p.templates_dir()),"
        " 'plans': sorted(pl.load_plans()), 'tags': m.known_tags()}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, check=True)
    found = json.loads(done.stdout)
    assert found["pkg"].startswith(str(target))
    assert found["templates"] == str(target / "repman" / "_data" / "templates")
    assert "x3.tiny" in found["plans"] and "semisync" in found["tags"]
