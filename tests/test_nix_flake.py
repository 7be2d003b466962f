"""flake.nix, evaluated against a stand-in nixpkgs that builds nothing and returns what it is
asked to build: the package, dev shell, apps, checks and NixOS module are wired to this repo,
and Pulumi versions are kept in one place (nix/versions.json) that agrees with pyproject."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from repman.nixeval import nix_dir
from testkit.nix import EXAMPLES, NIX_DIR, REPO, eval_cluster, needs_nix, nix_json, run_nix

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


def test_flake_lock_pins_a_supported_nixpkgs_release():
    """A committed lock for the release branch flake.nix names (nixos-26.05, supported until
    2026-12-31). Its rev and narHash come from a Nix-written lock of that branch (see nix/README.md);
    nothing here can fetch nixpkgs to recompute them."""
    lock = json.loads((REPO / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["nodes"]["root"]["inputs"] == {"nixpkgs": "nixpkgs"}
    node = lock["nodes"]["nixpkgs"]
    url = re.search(r'inputs\.nixpkgs\.url = "github:NixOS/nixpkgs/([^"]+)"', (REPO / "flake.nix").read_text()).group(1)
    assert node["original"] == {"owner": "NixOS", "repo": "nixpkgs", "ref": url, "type": "github"}
    release = re.fullmatch(r"nixos-(\d\d)\.(05|11)", url)
    assert release and (int(release.group(1)), int(release.group(2))) >= (26, 5), url
    locked = node["locked"]
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"]) and locked["owner"] == "NixOS" and locked["type"] == "github"
    assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked["narHash"])


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
    assert {"pulumi-with-plugins", "python3-env", "mariadb_1011", "haproxy", "sysbench", "iproute2"} \
        <= set(shell["packages"])
    assert "mariadb" not in shell["packages"]  # the 10.11 we test, not nixpkgs' default MariaDB
    # Linux-only tools only on Linux: the darwin shell is the same minus iproute2.
    assert shell["darwinPackages"] == [p for p in shell["packages"] if p != "iproute2"]
    # The renamed language host, and the provider plugins nixpkgs packages (kubernetes).
    assert [norm(p) for p in shell["pulumiPlugins"]] == ["pulumi-python", "pulumi-kubernetes"]
    extras = PYPROJECT["project"]["optional-dependencies"]
    wanted = requirement_names(PYPROJECT["project"]["dependencies"] + extras["pulumi"] + extras["opensvc"]) \
        | {"h2", "pytest", "pytest-timeout", "import-linter", "ruff", "mypy", "types-pyyaml"}
    assert wanted <= {norm(n) for n in shell["pythonPackages"]}
    assert "--system-site-packages .venv" in shell["shellHook"]


def test_pulumi_versions_live_in_one_place_and_fit_pyproject():
    pulumi_deps = PYPROJECT["project"]["optional-dependencies"]["pulumi"]
    names = {r: re.split(r"[<>=!~ ]", r, maxsplit=1)[0] for r in pulumi_deps}
    ranges = {norm(names[r]): SpecifierSet(r[len(names[r]):])
              for r in PYPROJECT["project"]["optional-dependencies"]["pulumi"]}
    pins = VERSIONS["python"]
    assert set(pins) == {n for n in ranges if n.startswith("pulumi-")}
    for name, pin in pins.items():
        assert Version(pin["version"]) in ranges[name], (name, pin["version"], ranges[name])
        assert norm(pin["pname"]) == name and pin["hash"].startswith("sha256-")


@needs_nix
def test_provider_sdks_match_their_plugins_or_come_from_the_pinned_sdists(flake):
    for name, sdk in flake["sdists"].items():
        pin = VERSIONS["python"][name]
        assert sdk["fetch"] == {"pname": pin["pname"], "version": pin["version"], "hash": pin["hash"]}
        assert "python3-pulumi" in sdk["dependencies"]
    # kubernetes: nixpkgs' SDK, the same version as the plugin in the dev shell's pulumi.
    plugin = next(p for p in flake["shell"]["pulumiPlugins"] if norm(p) == "pulumi-kubernetes")
    version = plugin.rsplit("-", 1)[1]
    assert flake["providers"]["pulumi-kubernetes"]["name"] == f"python3-pulumi-kubernetes-{version}"
    assert Version(version) in SpecifierSet(">=4,<5")
    # docker is not packaged in nixpkgs, and a nixpkgs without the kubernetes provider falls back.
    assert flake["providers"]["pulumi-docker"]["name"].endswith(VERSIONS["python"]["pulumi-docker"]["version"])
    assert flake["providersWithoutNixpkgsK8s"]["pulumi-kubernetes"].endswith(
        VERSIONS["python"]["pulumi-kubernetes"]["version"])


@needs_nix
def test_checks_evaluate_examples_and_name_existing_tests(flake):
    checks = flake["checks"]
    assert checks["names"] == ["examples", "nixos", "package", "pure-tests"]
    assert checks["darwinNames"] == ["examples", "package", "pure-tests"]  # VM tests need Linux
    assert checks["examples"]["local-3node"] == eval_cluster(EXAMPLES / "local-3node.nix")
    assert checks["examples"]["kube"] == eval_cluster(EXAMPLES / "kube.nix")
    listed = re.search(r"pytest -q -p no:cacheprovider (.*)\n", checks["pureTestsScript"]).group(1).split()
    assert listed and all((REPO / t).is_file() for t in listed), listed


@needs_nix
def test_flake_lib_and_nixos_module(flake):
    assert flake["stackConfig"] == eval_cluster(EXAMPLES / "local-3node.nix")
    # The flake evaluates clusters with nixpkgs' lib (a failing nixpkgs.lib.evalModules fails it);
    # nix/eval-cluster.nix (used just above) keeps the self-contained nix/lib.
    assert flake["clusterEvalUsesNixpkgsLib"] is True
    assert flake["nixos"]["failedAssertions"] == []
    assert flake["nixos"]["execStart"].endswith("-repman-0.1.0/bin/repman --config /etc/repman/watcher.json watch")
    assert flake["apps"]["tests"].endswith("-repman-tests") and flake["apps"]["nixeval"].endswith("-repman-nixeval")


@needs_nix
def test_nixos_vm_test_kills_the_primary_and_expects_a_promotion(flake):
    test = flake["nixosTest"]
    assert test["name"] == "repman-failover" and test["nodes"] == ["db1", "db2", "watcher"]
    script = test["testScript"]
    assert script.index("db1.crash()") < script.index("SELECT @@read_only' | grep -qx 0")
    assert "INSERT INTO t.x VALUES (2)" in script
