"""One ``preview``, ``up``, ``refresh`` or ``down`` of one stack: plan, apply, record.

Each resource the program registers (through ``embedded_engine.mocks``) goes through
``Engine.register``: ``check`` then ``create``, or ``check``/``diff`` against the state
then ``update``, replace or nothing, as the Pulumi engine does for dynamic providers.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from components.providers.docker_engine import (
    BLOB_PREFIX as DOCKER_BLOB_PREFIX,
    TYPES as DOCKER_TYPES,
    blob as docker_blob,
    provider_for as docker_provider_for,
)
from components.state_secrets import derive_key, is_sealed, seal, unseal
from embedded_engine.errors import EngineError
from embedded_engine.stack import project_name
from embedded_engine.state import ResourceState, StateFile, state_path
from repman.errors import RepmanError
from repman.spec import load_cluster_spec

PROVIDER_KEY = "__provider"
DYNAMIC_PREFIX = "pulumi-python:dynamic"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"

Progress = Callable[[str], None]


# ---------------------------------------------------------------- the wire

def wire(props: dict[str, Any], keep_unknowns: bool = False) -> dict[str, Any]:
    """``props`` as a provider receives them from the engine: through a protobuf ``Struct``.

    Every number comes back a float (``3306`` -> ``3306.0``), as under the Pulumi CLI.
    """
    from pulumi.runtime import rpc
    from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

    _ensure_event_loop()
    struct = _sync_await(rpc.serialize_properties(props, {}))
    return dict(rpc.deserialize_properties(struct, keep_unknowns))


def qualified_urn(stack: str, project: str, parent_urn: str, typ: str, name: str) -> str:
    """The URN the Pulumi engine builds: the parent's whole qualified type chain, minus the stack."""
    qualified = typ
    if parent_urn:
        parent_type = parent_urn.split("::")[2]
        if parent_type != ROOT_STACK_TYPE:
            qualified = f"{parent_type}${typ}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


# ---------------------------------------------------------------- providers

def load_provider(serialized: str) -> Any:
    """Deserialize a dynamic provider exactly as Pulumi's dynamic provider host does."""
    import dill

    if serialized.startswith(DOCKER_BLOB_PREFIX):
        return docker_provider_for(serialized)
    return dill.loads(base64.b64decode(serialized))


def _configure(provider: Any, config: dict[str, Any], project: str) -> None:
    from pulumi.dynamic import ConfigureRequest
    from pulumi.dynamic.config import Config

    provider.configure(ConfigureRequest(Config(raw_config=config, project_name=project)))


# ---------------------------------------------------------------- the plan

@dataclass
class Step:
    """One planned operation: ``+`` create, ``~`` update, ``-/+`` replace, ``-`` delete."""

    op: str
    name: str
    type: str
    keys: list[str] = field(default_factory=list)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def line(self, show_diff: bool = False) -> str:
        text = f"  {self.op:<3} {self.name:<28} {self.type.rsplit(':', 1)[-1]}"
        if self.keys:
            text += f"  ({', '.join(self.keys)})"
        if show_diff:
            for key, (old, new) in self.changes.items():
                text += f"\n        {key}: {json.dumps(old, default=str)} => {json.dumps(new, default=str)}"
        return text


def changed_keys(olds: dict[str, Any], news: dict[str, Any], secret_keys: set[str]) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs, numbers compared as the wire carries them (``3306 == 3306.0``).

    Secret keys are left out (state never holds them: the providers' digests tell their
    changes); a key still to be computed (``None``) is not a change.
    """
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(news):
        if key == PROVIDER_KEY or key in secret_keys or news[key] is None:
            continue
        old, new = olds.get(key), news[key]
        if _is_unknown(new):
            out[key] = (old, "[known after apply]")
        elif _normal(old) != _normal(new):
            out[key] = (old, new)
    return out


def _normal(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return str(value)

# ---------------------------------------------------------------- the engine

class Engine:
    """One ``preview``, ``up``, ``refresh`` or ``down`` of one stack.

    ``preview=True`` calls only ``check``, ``diff`` (and ``read`` for a refresh)
    and never writes the state file: the plan is recorded in ``self.plan``.
    """

    def __init__(self, project_dir: Path, stack: str, progress: Progress,
                 overrides: dict[str, Any] | None = None, preview: bool = False) -> None:
        self.project_dir = project_dir
        self.stack = stack
        self.progress = progress
        self.preview = preview
        self.project = project_name(project_dir)
        # The Pulumi CLI's merge and validation rules, secure values decrypted (components/pulumi_config.py).
        from components.pulumi_config import load_stack_config
        self.config = load_stack_config(project_dir, stack, overrides)
        # Validate before anything runs: a bad config creates nothing.
        self.spec = load_cluster_spec(self.config, project_dir=project_dir)
        self.state = StateFile(state_path(self.spec, stack), readonly=preview)
        credentials = [f"{c.user}:{c.password}" for c in (self.spec.admin, self.spec.replication)]
        self.sealing_key = derive_key(json.dumps(credentials), self.state.salt)
        self.seen: list[str] = []
        self.counts = {"created": 0, "updated": 0, "replaced": 0, "deleted": 0, "unchanged": 0}
        self.errors: list[str] = []
        self.plan: list[Step] = []
        self.interrupted = list(self.state.pending)
        for p in self.interrupted:
            progress(f"  ! {p['name']}: a {p['operation']} was interrupted (pending operation from an "
                     "earlier run; the resource may be half-made: `refresh` checks and clears it)")

    def urn(self, parent_urn: str, typ: str, name: str) -> str:
        return qualified_urn(self.stack, self.project, parent_urn, typ, name)

    # -- one registered resource
    def register(self, urn: str, typ: str, name: str, inputs: dict[str, Any], custom: bool,
                 secret_keys: set[str], protect: bool = False, delete_before_replace: bool = False,
                 secret_outputs: list[str] | None = None, parent: str = "",
                 dependencies: list[str] | None = None) -> tuple[str, dict[str, Any]]:
        with self.state.lock:
            self.seen.append(urn)
            self.state.adopt(urn, typ, name)
        if not custom:
            if urn not in self.state.resources:
                self._step(Step("+", name, typ))
            self.state.put(ResourceState(urn, typ, name, "", False, {}, parent=parent,
                                         dependencies=sorted(set(dependencies or []))))
            return "", {}
        if typ in DOCKER_TYPES:   # pulumi-docker resources: applied through docker-py (issue 17)
            inputs = {**inputs, PROVIDER_KEY: docker_blob(typ)}
        elif not typ.startswith(DYNAMIC_PREFIX):
            raise EngineError(f"{name}: resource type {typ} needs the Pulumi CLI (the embedded engine "
                              "runs dynamic providers only)")
        try:
            result = self._apply(urn, typ, name, inputs, secret_keys, protect, delete_before_replace,
                                 sorted(secret_outputs or []))
            self._link(urn, parent, sorted(set(dependencies or [])))
            return result
        except Exception as exc:
            msg = f"{name}: {exc}" if isinstance(exc, RepmanError) else f"{name}: {type(exc).__name__}: {exc}"
            with self.state.lock:
                self.errors.append(msg)
            self.progress(f"  ! {name} failed: {msg.split(': ', 1)[1]}")
            raise

    def _link(self, urn: str, parent: str, dependencies: list[str]) -> None:
        """Parent and dependencies as registered (what a Pulumi deployment records)."""
        with self.state.lock:
            res = self.state.resources.get(urn)
            if res is not None and (res.parent, res.dependencies) != (parent, dependencies):
                res.parent, res.dependencies = parent, dependencies
                self.state.save()

    def _step(self, step: Step) -> None:
        with self.state.lock:
            self.plan.append(step)

    def _apply(self, urn: str, typ: str, name: str, news: dict[str, Any], secret_keys: set[str],
               protect: bool, delete_before_replace: bool, secret_outputs: list[str]) -> tuple[str, dict[str, Any]]:
        provider = load_provider(news[PROVIDER_KEY])
        _configure(provider, self.config, self.project)
        old = self.state.resources.get(urn)
        started = time.monotonic()
        if old is None or not old.custom:
            checked = self._check(provider, {}, news)
            self._step(Step("+", name, typ))
            if self.preview:
                return "", _unknown_outputs(checked)
            id_, outs = self._create(provider, urn, typ, name, checked, secret_keys, protect, secret_outputs)
            self.counts["created"] += 1
            self.progress(f"  + {name} created ({time.monotonic() - started:.1f}s)")
            return id_, outs
        old_inputs = wire(old.inputs or self._opened(old))
        olds = wire(self._opened(old))
        checked = self._check(provider, old_inputs, news)
        diff = provider.diff(old.id, olds, checked)
        changes = changed_keys(old_inputs, checked, secret_keys)
        if diff.replaces:
            if old.protect or protect:
                raise EngineError(f"refusing to replace protected resource {name} ({', '.join(diff.replaces)} "
                                  "changed); set repman:prov-protect false to allow it")
            self._step(Step("-/+", name, typ, list(diff.replaces), changes))
            if self.preview:
                return old.id, _unknown_outputs(checked)
            first_delete = bool(diff.delete_before_replace) or delete_before_replace
            self.progress(f"  ~ {name}: replacing ({', '.join(diff.replaces)} changed; "
                          f"{'delete then create' if first_delete else 'create then delete'})")
            if first_delete:
                self._delete_one(old, olds)
            id_, outs = self._create(provider, urn, typ, name, checked, secret_keys, protect, secret_outputs)
            if not first_delete:
                self._delete_one(old, olds, keep_entry=True)
            self.counts["replaced"] += 1
            self.progress(f"  + {name} replaced ({time.monotonic() - started:.1f}s)")
            return id_, outs
        if diff.changes:
            keys = [k for k in changes] or ["a secret or the recorded live state"]
            self._step(Step("~", name, typ, keys, changes))
            if self.preview:
                return old.id, {**olds, **{k: v for k, v in checked.items()
                                           if k not in secret_keys and v is not None and not _is_unknown(v)}}
            self.state.begin("updating", urn, name)
            result = provider.update(old.id, olds, checked)
            outs = result.outs or {}
            self.state.put(ResourceState(urn, typ, name, old.id, True,
                                         self._stored(outs, news[PROVIDER_KEY], secret_keys, secret_outputs),
                                         self._inputs(checked, secret_keys), protect, secret_outputs))
            self.state.end(urn)
            self.counts["updated"] += 1
            self.progress(f"  ~ {name} updated: {', '.join(keys)} ({time.monotonic() - started:.1f}s)")
            return old.id, {**{k: v for k, v in outs.items() if k not in secret_keys},
                            PROVIDER_KEY: news[PROVIDER_KEY]}
        self.counts["unchanged"] += 1
        if protect != old.protect and not self.preview:
            self.state.put(ResourceState(urn, typ, name, old.id, True, old.outputs, old.inputs, protect,
                                         old.secret_outputs))
        return old.id, olds

    @staticmethod
    def _check(provider: Any, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        check = provider.check(olds, news)
        if check.failures:
            f = check.failures[0]
            raise EngineError(f"{f.property}: {f.reason}")
        checked = dict(check.inputs)
        checked[PROVIDER_KEY] = news[PROVIDER_KEY]
        return checked

    def _create(self, provider: Any, urn: str, typ: str, name: str, checked: dict[str, Any],
                secret_keys: set[str], protect: bool, secret_outputs: list[str]) -> tuple[str, dict[str, Any]]:
        self.state.begin("creating", urn, name)
        result = provider.create(checked)
        outs = result.outs or {}
        self.state.put(ResourceState(urn, typ, name, str(result.id), True,
                                     self._stored(outs, checked[PROVIDER_KEY], secret_keys, secret_outputs),
                                     self._inputs(checked, secret_keys), protect, secret_outputs))
        self.state.end(urn)
        return str(result.id), {**{k: v for k, v in outs.items() if k not in secret_keys},
                                PROVIDER_KEY: checked[PROVIDER_KEY]}

    def _stored(self, outs: dict[str, Any], provider_blob: str, secret_keys: set[str],
                secret_outputs: list[str]) -> dict[str, Any]:
        """Outputs as stored: secret inputs never written, secret outputs sealed, the provider blob kept."""
        clean = {k: (seal(v, self.sealing_key) if k in secret_outputs and v is not None else v)
                 for k, v in outs.items() if k not in secret_keys}
        clean[PROVIDER_KEY] = provider_blob
        return clean

    def _opened(self, res: ResourceState) -> dict[str, Any]:
        """Outputs with sealed values opened; one that no longer opens is left out (reads as changed)."""
        out: dict[str, Any] = {}
        for key, value in res.outputs.items():
            if is_sealed(value):
                ok, plain = unseal(value, self.sealing_key)
                if ok:
                    out[key] = plain
            else:
                out[key] = value
        return out

    @staticmethod
    def _inputs(checked: dict[str, Any], secret_keys: set[str]) -> dict[str, Any]:
        """Checked inputs as stored for the next ``check``: secrets never written."""
        return {k: v for k, v in checked.items() if k not in secret_keys}

    # -- whole runs
    def up(self, refresh: bool = False) -> dict[str, Any]:
        from embedded_engine.mocks import run_program  # imports pulumi: only when running

        verb = "preview" if self.preview else "up"
        self.progress(f"{verb}: stack {self.stack}, cluster {self.spec.name}, {self.spec.node_count} nodes "
                      f"({self.spec.orchestrator}, {self.spec.plan.name})")
        if refresh:
            self.refresh()
        outputs, secret_outputs = run_program(self)
        stale = [u for u in reversed(list(self.state.resources)) if u not in self.seen]
        for urn in stale:
            res = self.state.resources[urn]
            if res.protect:
                raise EngineError(f"refusing to delete protected resource {res.name}; "
                                  "set repman:prov-protect false to allow it")
        for urn in stale:
            res = self.state.resources[urn]
            self._step(Step("-", res.name, res.type))
            if not self.preview:
                self._delete(res)
        if not self.preview:
            self.state.outputs = {k: ("[secret]" if k in secret_outputs else v) for k, v in outputs.items()}
            self.state.save()
        return {"outputs": outputs, "secret_outputs": sorted(secret_outputs), "changes": dict(self.counts),
                "plan": sorted(s.line().strip() for s in self.plan)}

    def refresh(self) -> dict[str, Any]:
        """``read`` every resource: record drift in state (in memory only under preview)."""
        drifted = 0
        for res in list(self.state.resources.values()):
            if not res.custom:
                continue
            provider = load_provider(res.outputs[PROVIDER_KEY])
            _configure(provider, self.config, self.project)
            olds = wire(self._opened(res))
            with _one_line(res.name, "read"):
                result = provider.read(res.id, olds)
            if not result.id:
                self.progress(f"  - {res.name}: gone (refresh removes it from state)")
                self.state.drop(res.urn)
                drifted += 1
                continue
            outs = dict(result.outs or {})
            outs[PROVIDER_KEY] = res.outputs[PROVIDER_KEY]
            drift = changed_keys(olds, outs, set())
            if drift:
                drifted += 1
                self.progress(f"  ~ {res.name}: drifted ({', '.join(drift)})")
            inputs = res.inputs if result.inputs is None else {**result.inputs, PROVIDER_KEY: res.outputs[PROVIDER_KEY]}
            stored = self._stored(outs, res.outputs[PROVIDER_KEY], set(), res.secret_outputs)
            self.state.put(ResourceState(res.urn, res.type, res.name, str(result.id), True, stored, inputs,
                                         res.protect, res.secret_outputs))
        for p in self.interrupted:
            self.progress(f"  ! {p['name']}: pending {p['operation']} cleared (state now says what is there)")
        with self.state.lock:
            self.state.pending = []
            self.state.save()
        return {"drifted": drifted, "interrupted": [p["name"] for p in self.interrupted]}

    def down(self) -> dict[str, Any]:
        self.progress(f"down: stack {self.stack}, cluster {self.spec.name}")
        protected = [r.name for r in self.state.resources.values() if r.protect]
        if protected:
            raise EngineError(f"refusing to delete protected resource {protected[0]} "
                              f"({len(protected)} protected); set repman:prov-protect false and run up first")
        for res in reversed(list(self.state.resources.values())):
            self._delete(res)
        self.state.outputs = {}
        self.state.save()
        return {"changes": dict(self.counts)}

    def _delete_one(self, res: ResourceState, olds: dict[str, Any], keep_entry: bool = False) -> None:
        provider = load_provider(res.outputs[PROVIDER_KEY])
        _configure(provider, self.config, self.project)
        self.state.begin("deleting", res.urn, res.name)
        with _one_line(res.name, "delete"):
            provider.delete(res.id, olds)
        if not keep_entry:
            self.state.drop(res.urn)
        self.state.end(res.urn)

    def _delete(self, res: ResourceState) -> None:
        started = time.monotonic()
        if res.custom:
            self._delete_one(res, wire(self._opened(res)))
            self.counts["deleted"] += 1
            self.progress(f"  - {res.name} deleted ({time.monotonic() - started:.1f}s)")
        self.state.drop(res.urn)

    def export(self) -> dict[str, Any]:
        """The state as a Pulumi deployment (schema version 3) for ``pulumi stack import``.

        Dynamic resources reference the default ``pulumi-python`` provider; secret outputs
        travel as Pulumi ``plaintext`` secrets, which the CLI encrypts with the stack's
        secrets provider on import. Passwords are not in it: they never were in state.
        """
        if self.state.pending:
            raise EngineError(f"{len(self.state.pending)} pending operation(s): run refresh before export")
        stack_urn = qualified_urn(self.stack, self.project, "", ROOT_STACK_TYPE, f"{self.project}-{self.stack}")
        provider_urn = qualified_urn(self.stack, self.project, "", "pulumi:providers:pulumi-python", "default")
        provider_id = str(uuid.uuid5(uuid.NAMESPACE_URL, provider_urn))
        outputs = {k: v for k, v in self.state.outputs.items() if v != "[secret]"}
        resources: list[dict[str, Any]] = [
            {"urn": stack_urn, "custom": False, "type": ROOT_STACK_TYPE, "outputs": outputs},
            {"urn": provider_urn, "custom": True, "id": provider_id, "type": "pulumi:providers:pulumi-python",
             "inputs": {}, "outputs": {}},
        ]
        for res in self.state.resources.values():
            entry: dict[str, Any] = {"urn": res.urn, "custom": res.custom, "type": res.type,
                                     "parent": res.parent or stack_urn}
            if res.dependencies:
                entry["dependencies"] = res.dependencies
            if res.protect:
                entry["protect"] = True
            if res.custom:
                opened = self._opened(res)
                entry.update({
                    "id": res.id, "provider": f"{provider_urn}::{provider_id}",
                    "inputs": res.inputs or {k: v for k, v in opened.items() if k not in res.secret_outputs},
                    "outputs": {k: (_pulumi_secret(v) if k in res.secret_outputs else v) for k, v in opened.items()},
                })
                if res.secret_outputs:
                    entry["additionalSecretOutputs"] = res.secret_outputs
            resources.append(entry)
        manifest = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "magic": "", "version": ""}
        return {"version": 3, "deployment": {"manifest": manifest, "resources": resources}}

    def status(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "state_file": str(self.state.path),
            "resources": [{"name": r.name, "type": r.type, "id": r.id, "protect": r.protect}
                          for r in self.state.resources.values()],
            "outputs": self.state.outputs,
            "pending_operations": list(self.state.pending),
        }


def _pulumi_secret(value: Any) -> dict[str, str]:
    """A secret as ``pulumi stack export --show-secrets`` writes it (the CLI encrypts it on import)."""
    return {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "plaintext": json.dumps(value)}


@contextmanager
def _one_line(name: str, operation: str) -> Iterator[None]:
    """A provider failure outside the program run as one line naming the resource, not a traceback."""
    try:
        yield
    except EngineError:
        raise
    except RepmanError as exc:
        raise EngineError(f"{name}: {operation}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - provider code may raise anything
        raise EngineError(f"{name}: {operation}: {type(exc).__name__}: {exc}") from None


def _unknown_outputs(checked: dict[str, Any]) -> dict[str, Any]:
    """What preview hands the program for a resource still to be made: inputs, computed outputs unknown."""
    from pulumi.runtime import rpc

    return {k: (rpc.UNKNOWN if v is None or _is_unknown(v) else v) for k, v in checked.items()}


def _is_unknown(value: Any) -> bool:
    from pulumi.output import Unknown
    from pulumi.runtime import rpc

    return isinstance(value, Unknown) or value == rpc.UNKNOWN
