"""The embedded engine's state file: resources in creation order, pending operations, outputs.

Kept apart from the engine so the file format has one owner (``export`` and ``status``
read it through ``StateFile``); secret outputs are sealed by the engine before ``put``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.state_secrets import new_salt
from repman.spec import ClusterSpec

STATE_VERSION = 2


@dataclass
class ResourceState:
    urn: str
    type: str
    name: str
    id: str
    custom: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    secret_outputs: list[str] = field(default_factory=list)
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "id": self.id,
                "custom": self.custom, "outputs": self.outputs, "inputs": self.inputs, "protect": self.protect,
                "secret_outputs": self.secret_outputs, "parent": self.parent, "dependencies": self.dependencies}


class StateFile:
    """Resources in creation order and pending operations, rewritten atomically after every change.

    A ``readonly`` state (preview) is never written: preview leaves the file's bytes as they were.
    """

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self.lock = threading.RLock()
        self.resources: dict[str, ResourceState] = {}
        self.outputs: dict[str, Any] = {}
        self.pending: list[dict[str, str]] = []
        self.salt = new_salt()
        if path.exists():
            doc = json.loads(path.read_text())
            self.salt = doc.get("secrets_salt") or self.salt
            for r in doc.get("resources", []):
                self.resources[r["urn"]] = ResourceState(**r)
            self.outputs = doc.get("outputs", {})
            self.pending = list(doc.get("pending_operations", []))

    def put(self, res: ResourceState) -> None:
        """Add at the end (creation order) or update in place."""
        with self.lock:
            self.resources[res.urn] = res
            self.save()

    def drop(self, urn: str) -> None:
        with self.lock:
            self.resources.pop(urn, None)
            self.save()

    def adopt(self, urn: str, typ: str, name: str) -> None:
        """Take over an entry of the same type and name under an older URN (state written before
        URNs carried the whole parent chain), as a Pulumi alias would: no re-create, no delete."""
        if urn in self.resources:
            return
        for old_urn, res in self.resources.items():
            if res.type == typ and res.name == name:
                res.urn = urn
                self.resources = {(urn if k == old_urn else k): v for k, v in self.resources.items()}
                return

    def begin(self, op: str, urn: str, name: str) -> None:
        """Record an operation before it starts: a crash leaves it here to be reported."""
        with self.lock:
            self.pending.append({"operation": op, "urn": urn, "name": name})
            self.save()

    def end(self, urn: str) -> None:
        with self.lock:
            self.pending = [p for p in self.pending if p["urn"] != urn]
            self.save()

    def save(self) -> None:
        if self.readonly:
            return
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            doc = {"version": STATE_VERSION, "resources": [r.as_dict() for r in self.resources.values()],
                   "outputs": self.outputs, "pending_operations": self.pending, "secrets_salt": self.salt}
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(doc, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.path)


def state_path(spec: ClusterSpec, stack: str) -> Path:
    return spec.state_dir / f"embedded-engine.{stack}.json"

