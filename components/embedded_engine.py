"""Run the Pulumi program without the Pulumi CLI: ``python -m components.embedded_engine up``.

The Pulumi CLI and engine cannot be installed everywhere (not on our CI machines),
so this module plays the engine's part for dynamic providers only. It runs
``__main__.py`` for a stack under ``pulumi.runtime.set_mocks``; the mock monitor
does what the engine would do with each registered resource:

- a new dynamic resource: deserialize its ``__provider`` (as Pulumi's dynamic
  provider host does), ``check`` then ``create`` for real;
- a known one: ``diff`` against the outputs in a JSON state file, then ``update``,
  replace (delete then create) or nothing;
- resources in state that the program no longer declares are deleted afterwards.

``down`` deletes everything in reverse creation order. The state file lives in
the stack's ``prov-state-dir`` and never holds secret inputs. Other resource
types (Kubernetes, Docker...) need the real Pulumi CLI and are refused.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from repman.errors import RepmanError
from repman.spec import ClusterSpec, load_cluster_spec

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROVIDER_KEY = "__provider"
DYNAMIC_PREFIX = "pulumi-python:dynamic"
STATE_VERSION = 1


class EngineError(RepmanError):
    """A resource operation failed; the message names the resource."""


Progress = Callable[[str], None]


# ---------------------------------------------------------------- stack config

def project_name(project_dir: Path) -> str:
    doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    return str(doc.get("name") or "repman")


def stack_config(project_dir: Path, stack: str) -> dict[str, Any]:
    """Project defaults from ``Pulumi.yaml`` overlaid with ``stacks/Pulumi.<stack>.yaml``."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    name = str(project.get("name") or "repman")
    config_dir = project_dir / str(project.get("stackConfigDir") or ".")
    stack_file = config_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise RepmanError(f"stack {stack!r}: no {stack_file.relative_to(project_dir)}")
    out: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(decl, dict) and "default" in decl:
            out[full] = decl["default"]
    stack_doc = yaml.safe_load(stack_file.read_text()) or {}
    for key, value in (stack_doc.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(value, dict) and "secure" in value:
            raise RepmanError(f"{full}: encrypted with a Pulumi secrets provider; only the Pulumi CLI can read it")
        out[full] = value
    return out


def config_env(config: dict[str, Any]) -> str:
    """``PULUMI_CONFIG`` as the engine passes it: strings, structured values as JSON."""
    def text(v: Any) -> str:
        if isinstance(v, (list, dict)):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)
    return json.dumps({k: text(v) for k, v in config.items()})


# ---------------------------------------------------------------- state file

@dataclass
class ResourceState:
    urn: str
    type: str
    name: str
    id: str
    custom: bool
    outputs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "id": self.id,
                "custom": self.custom, "outputs": self.outputs}


class StateFile:
    """Resources in creation order, rewritten atomically after every operation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.resources: dict[str, ResourceState] = {}
        self.outputs: dict[str, Any] = {}
        if path.exists():
            doc = json.loads(path.read_text())
            for r in doc.get("resources", []):
                self.resources[r["urn"]] = ResourceState(**r)
            self.outputs = doc.get("outputs", {})

    def put(self, res: ResourceState) -> None:
        """Add at the end (creation order) or update in place."""
        with self.lock:
            self.resources[res.urn] = res
            self.save()

    def drop(self, urn: str) -> None:
        with self.lock:
            self.resources.pop(urn, None)
            self.save()

    def save(self) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            doc = {"version": STATE_VERSION, "resources": [r.as_dict() for r in self.resources.values()],
                   "outputs": self.outputs}
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(doc, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.path)


def state_path(spec: ClusterSpec, stack: str) -> Path:
    return spec.state_dir / f"embedded-engine.{stack}.json"


# ---------------------------------------------------------------- providers

def load_provider(serialized: str) -> Any:
    """Deserialize a dynamic provider exactly as Pulumi's dynamic provider host does."""
    import dill

    return dill.loads(base64.b64decode(serialized))


def _configure(provider: Any, config: dict[str, Any], project: str) -> None:
    from pulumi.dynamic import ConfigureRequest
    from pulumi.dynamic.config import Config

    provider.configure(ConfigureRequest(Config(raw_config=config, project_name=project)))


# ---------------------------------------------------------------- the engine

class Engine:
    """One ``up`` or ``down`` of one stack."""

    def __init__(self, project_dir: Path, stack: str, progress: Progress,
                 overrides: dict[str, Any] | None = None) -> None:
        self.project_dir = project_dir
        self.stack = stack
        self.progress = progress
        self.project = project_name(project_dir)
        # The Pulumi CLI's merge and validation rules, secure values decrypted (components/pulumi_config.py).
        from components.pulumi_config import load_stack_config
        self.config = load_stack_config(project_dir, stack, overrides)
        # Validate before anything runs: a bad config creates nothing.
        self.spec = load_cluster_spec(self.config, project_dir=project_dir)
        self.state = StateFile(state_path(self.spec, stack))
        self.seen: list[str] = []
        self.counts = {"created": 0, "updated": 0, "replaced": 0, "deleted": 0, "unchanged": 0}
        self.errors: list[str] = []

    # -- one registered resource
    def register(self, urn: str, typ: str, name: str, inputs: dict[str, Any], custom: bool,
                 secret_keys: set[str]) -> tuple[str, dict[str, Any]]:
        with self.state.lock:
            self.seen.append(urn)
        if not custom:
            self.state.put(ResourceState(urn, typ, name, "", False, {}))
            return "", {}
        if not typ.startswith(DYNAMIC_PREFIX):
            raise EngineError(f"{name}: resource type {typ} needs the Pulumi CLI (the embedded engine "
                              "runs dynamic providers only)")
        try:
            return self._apply(urn, typ, name, inputs, secret_keys)
        except Exception as exc:
            msg = f"{name}: {exc}" if isinstance(exc, RepmanError) else f"{name}: {type(exc).__name__}: {exc}"
            with self.state.lock:
                self.errors.append(msg)
            self.progress(f"  ! {name} failed: {msg.split(': ', 1)[1]}")
            raise

    def _apply(self, urn: str, typ: str, name: str, inputs: dict[str, Any],
               secret_keys: set[str]) -> tuple[str, dict[str, Any]]:
        provider = load_provider(inputs[PROVIDER_KEY])
        _configure(provider, self.config, self.project)
        old = self.state.resources.get(urn)
        started = time.monotonic()
        if old is not None and old.custom:
            olds = dict(old.outputs)
            diff = provider.diff(old.id, olds, inputs)
            if diff.replaces:
                self.progress(f"  ~ {name}: replacing ({', '.join(diff.replaces)} changed)")
                load_provider(olds.get(PROVIDER_KEY, inputs[PROVIDER_KEY])).delete(old.id, olds)
                self.state.drop(urn)
                id_, outs = self._create(provider, urn, typ, name, inputs, secret_keys)
                self.counts["replaced"] += 1
                self.progress(f"  + {name} replaced ({time.monotonic() - started:.1f}s)")
                return id_, outs
            if diff.changes:
                checked = provider.check(olds, inputs).inputs
                result = provider.update(old.id, olds, checked)
                outs = self._outputs(result.outs or {}, inputs, secret_keys)
                self.state.put(ResourceState(urn, typ, name, old.id, True, outs))
                self.counts["updated"] += 1
                keys = sorted(k for k in inputs if k != PROVIDER_KEY and k not in secret_keys
                              and olds.get(k) != inputs.get(k))
                why = f"{', '.join(keys)} changed" if keys else "live state drifted"
                self.progress(f"  ~ {name} updated: {why} ({time.monotonic() - started:.1f}s)")
                return old.id, outs
            self.counts["unchanged"] += 1
            return old.id, olds
        id_, outs = self._create(provider, urn, typ, name, inputs, secret_keys)
        self.counts["created"] += 1
        self.progress(f"  + {name} created ({time.monotonic() - started:.1f}s)")
        return id_, outs

    def _create(self, provider: Any, urn: str, typ: str, name: str, inputs: dict[str, Any],
                secret_keys: set[str]) -> tuple[str, dict[str, Any]]:
        check = provider.check({}, inputs)
        if check.failures:
            f = check.failures[0]
            raise EngineError(f"{f.property}: {f.reason}")
        result = provider.create(check.inputs)
        outs = self._outputs(result.outs or {}, inputs, secret_keys)
        self.state.put(ResourceState(urn, typ, name, str(result.id), True, outs))
        return str(result.id), outs

    @staticmethod
    def _outputs(outs: dict[str, Any], inputs: dict[str, Any], secret_keys: set[str]) -> dict[str, Any]:
        """Outputs as stored: the provider blob kept, secret inputs never written."""
        clean = {k: v for k, v in outs.items() if k not in secret_keys}
        clean[PROVIDER_KEY] = inputs[PROVIDER_KEY]
        return clean

    # -- whole runs
    def up(self) -> dict[str, Any]:
        from components.embedded_mocks import run_program  # imports pulumi: only when running

        self.progress(f"up: stack {self.stack}, cluster {self.spec.name}, {self.spec.node_count} nodes "
                      f"({self.spec.orchestrator}, {self.spec.plan.name})")
        outputs, secret_outputs = run_program(self)
        stale = [u for u in reversed(list(self.state.resources)) if u not in self.seen]
        for urn in stale:
            self._delete(self.state.resources[urn])
        self.state.outputs = {k: ("[secret]" if k in secret_outputs else v) for k, v in outputs.items()}
        self.state.save()
        return {"outputs": outputs, "secret_outputs": sorted(secret_outputs), "changes": dict(self.counts)}

    def down(self) -> dict[str, Any]:
        self.progress(f"down: stack {self.stack}, cluster {self.spec.name}")
        for res in reversed(list(self.state.resources.values())):
            self._delete(res)
        self.state.outputs = {}
        self.state.save()
        return {"changes": dict(self.counts)}

    def _delete(self, res: ResourceState) -> None:
        started = time.monotonic()
        if res.custom:
            provider = load_provider(res.outputs[PROVIDER_KEY])
            _configure(provider, self.config, self.project)
            provider.delete(res.id, dict(res.outputs))
            self.counts["deleted"] += 1
            self.progress(f"  - {res.name} deleted ({time.monotonic() - started:.1f}s)")
        self.state.drop(res.urn)

    def status(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "state_file": str(self.state.path),
            "resources": [{"name": r.name, "type": r.type, "id": r.id} for r in self.state.resources.values()],
            "outputs": self.state.outputs,
        }


# ---------------------------------------------------------------- command line

def parse_overrides(items: list[str], project: str) -> dict[str, Any]:
    """``-c key=value`` as ``pulumi up --config``: bare keys get the project namespace; JSON values parsed."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RepmanError(f"--config {item!r}: expected key=value")
        full = key if ":" in key else f"{project}:{key}"
        try:
            out[full] = json.loads(value) if value[:1] in ("[", "{") else value
        except ValueError:
            out[full] = value
    return out


def _print_outputs(outputs: dict[str, Any], secret: set[str], show_secrets: bool) -> None:
    print("Outputs:")
    for key, value in outputs.items():
        shown = "[secret]" if key in secret and not show_secrets else value
        if isinstance(shown, str) and "\n" in shown:
            print(f"    {key}:")
            for line in shown.rstrip("\n").splitlines():
                print(f"        {line}")
        else:
            print(f"    {key:<24} {json.dumps(shown)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.embedded_engine",
                                     description="Run the repman Pulumi program without the Pulumi CLI.")
    parser.add_argument("command", choices=("up", "down", "destroy", "status"))
    parser.add_argument("--stack", "-s", default="local")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--show-secrets", action="store_true")
    parser.add_argument("--config", "-c", action="append", default=[], metavar="KEY=VALUE",
                        help="override a stack config value for this run (like pulumi up --config)")
    args = parser.parse_args(argv)
    quiet = args.json
    progress: Progress = (lambda m: print(m, file=sys.stderr, flush=True)) if quiet else (lambda m: print(m, flush=True))
    started = time.monotonic()
    try:
        project_dir = args.project_dir.resolve()
        overrides = parse_overrides(args.config, project_name(project_dir))
        engine = Engine(project_dir, args.stack, progress, overrides)
        if args.command == "up":
            result = engine.up()
        elif args.command in ("down", "destroy"):
            result = engine.down()
        else:
            result = engine.status()
    except RepmanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if not isinstance(exc, EngineError) else 1
    result["seconds"] = round(time.monotonic() - started, 2)
    if args.json:
        out = dict(result)
        if "outputs" in out and not args.show_secrets:
            secret = set(out.get("secret_outputs", []))
            out["outputs"] = {k: ("[secret]" if k in secret else v) for k, v in out["outputs"].items()}
        print(json.dumps(out, indent=1, sort_keys=True))
        return 0
    if args.command == "status":
        print(f"state: {result['state_file']}")
        for r in result["resources"]:
            print(f"    {r['type']:<44} {r['name']}")
        _print_outputs(result["outputs"], set(), True)
    elif args.command == "up":
        _print_outputs(result["outputs"], set(result["secret_outputs"]), args.show_secrets)
    changes = result.get("changes")
    if changes:
        print("Resources: " + ", ".join(f"{v} {k}" for k, v in changes.items() if v) + f"; {result['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
