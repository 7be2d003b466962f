"""flake.nix, evaluated against a stand-in nixpkgs that builds nothing and returns what it is
asked to build: the package, dev shell, apps, checks and NixOS module are wired to this repo,
and Pulumi versions are kept in one place (nix/versions.json) that agrees with pyproject."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from repman.nixeval import nix_dir
from tests.nix_support import EXAMPLES, NIX_DIR, REPO, eval_cluster, needs_nix, nix_json, run_nix

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSIONS = json.loads((NIX_DIR / "versions.json").read_text())
NIXOS = ('{ services.repman = { enable = true; clusters.c.db-servers-hosts = [ "h:1" ]; '
         'clusters.c.db-servers-credential.file = "/a"; clusters.c.replication-credential.file = "/b"; }; }')


def norm(name: str) -> str:
    """PyPI name normalisation, and the stand-in's `python3-<name>[-<version>]` derivation names."""
    name = re.sub(r"^python3-", "", name)
    name = re.sub(r"-\d+(\.\d+)*$", "", name)
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {norm(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requirements}


@pytest.fixture(scope="module")
def flake() -> dict[str, Any]:
    return nix_json([str(NIX_DIR / "tests" / "eval-flake.nix"), "--arg", "configuration", NIXOS])


@needs_nix
def test_flake_parses_and_pins_nixpkgs():
    assert run_nix(["--parse", str(REPO / "flake.nix")]).returncode == 0


@needs_nix
def test_package_is_repman_built_with_hatchling_and_every_dependency(flake):
    pkg = flake["repman"]
    assert pkg["builder"] == "buildPythonApplication"
    assert (pkg["pname"], pkg["version"]) == (PYPROJECT["project"]["name"], PYPROJECT["project"]["version"])
    assert [norm(n) for n in pkg["buildSystem"]] == ["hatchling"]
    assert requirement_names(PYPROJECT["project"]["dependencies"]) == {norm(n) for n in pkg["dependencies"]}
    assert pkg["mainProgram"] == "repman" and "repman.nixeval" in pkg["pythonImportsCheck"]
    assert flake["apps"]["default"].endswith("-repman-0.1.0/bin/repman")


def test_wheel_carries_templates_plans_and_nix():
    force = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert {"templates": "repman/_data/templates", "service_plans": "repman/_data/service_plans",
            "nix": "repman/_data/nix"}.items() <= force.items()
    assert nix_dir() == NIX_DIR


@needs_nix
def test_dev_shell_has_pulumi_python_env_and_servers(flake):
    shell = flake["shell"]
    assert {"pulumi-with-plugins", "python3-env", "mariadb", "haproxy", "sysbench"} <= set(shell["packages"])
    assert shell["pulumiPlugins"] == ["pulumi-language-python"]
    wanted = requirement_names(PYPROJECT["project"]["dependencies"]) | {"pytest", "pytest-timeout"}
    assert wanted <= {norm(n) for n in shell["pythonPackages"]}
    assert "--system-site-packages .venv" in shell["shellHook"]


def test_pulumi_versions_live_in_one_place_and_fit_pyproject():
    ranges = {norm(re.split(r"[<>=!~ ]", r, maxsplit=1)[0]): SpecifierSet(r[len(re.split(r"[<>=!~ ]", r, maxsplit=1)[0]):])
              for r in PYPROJECT["project"]["dependencies"]}
    pins = VERSIONS["python"]
    assert set(pins) == {n for n in ranges if n.startswith("pulumi-")}
    for name, pin in pins.items():
        assert Version(pin["version"]) in ranges[name], (name, pin["version"], ranges[name])
        assert norm(pin["pname"]) == name and pin["hash"].startswith("sha256-")


@needs_nix
def test_provider_sdks_come_from_the_pinned_sdists(flake):
    for name, sdk in flake["providers"].items():
        pin = VERSIONS["python"][name]
        assert sdk["fetch"] == {"pname": pin["pname"], "version": pin["version"], "hash": pin["hash"]}
        assert "python3-pulumi" in sdk["dependencies"]


@needs_nix
def test_checks_evaluate_examples_and_name_existing_tests(flake):
    checks = flake["checks"]
    assert checks["names"] == ["examples", "package", "pure-tests"]
    assert checks["examples"]["local-3node"] == eval_cluster(EXAMPLES / "local-3node.nix")
    assert checks["examples"]["kube"] == eval_cluster(EXAMPLES / "kube.nix")
    listed = re.search(r"pytest -q -p no:cacheprovider (.*)\n", checks["pureTestsScript"]).group(1).split()
    assert listed and all((REPO / t).is_file() for t in listed), listed


@needs_nix
def test_flake_lib_and_nixos_module(flake):
    assert flake["stackConfig"] == eval_cluster(EXAMPLES / "local-3node.nix")
    assert flake["nixos"]["failedAssertions"] == []
    assert flake["nixos"]["execStart"].endswith("-repman-0.1.0/bin/repman --config /etc/repman/watcher.json watch")
    assert flake["apps"]["tests"].endswith("-repman-tests") and flake["apps"]["nixeval"].endswith("-repman-nixeval")
