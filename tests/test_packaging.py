"""The wheel carries templates and service plans, and an installed copy finds them."""

from __future__ import annotations

import json
import re
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
    assert not any(n.startswith(("components/", "embedded_engine/", "tests/")) for n in names)  # runtime package only
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


def test_watcher_install_does_not_pull_the_pulumi_sdks(wheel):
    """`pip install repman` on a watcher host: Pulumi and its provider SDKs only with the extra."""
    meta = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    requires = [line.split(":", 1)[1].strip() for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
                if line.startswith("Requires-Dist:")]
    base = [r for r in requires if "extra ==" not in r]
    assert base and not any(r.lower().startswith("pulumi") for r in base), base
    pulumi_extra = [r.split(";")[0].replace(" ", "") for r in requires if "extra == 'pulumi'" in r
                    or 'extra == "pulumi"' in r]
    assert "pulumi<4,>=3.139" in pulumi_extra or "pulumi>=3.139,<4" in pulumi_extra, pulumi_extra
    assert {re.split(r"[<>=]", r)[0] for r in pulumi_extra} >= {"pulumi", "pulumi-kubernetes", "pulumi-docker"}


def test_runtime_package_never_imports_pulumi(wheel, tmp_path):
    """Every module of the installed wheel imports with any `pulumi*` import refused."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=240)
    probe = (
        "import sys, importlib, pkgutil\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0].startswith('pulumi'): raise ImportError('refused ' + name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "import repman\n"
        "assert repman.__file__.startswith(sys.argv[1]), repman.__file__\n"
        "names = [m.name for m in pkgutil.walk_packages(repman.__path__, 'repman.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(target)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) > 20


def test_pulumi_install_in_a_fresh_clone_gets_the_sdks():
    """Pulumi.yaml's pip toolchain installs requirements.txt into .venv: repman with the pulumi extra."""
    import tomllib

    import yaml

    runtime = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines == ["-e .[pulumi]"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "repman[pulumi]" in extras["test"]  # `.[test]` keeps installing everything the tests need
