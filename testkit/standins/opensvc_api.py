"""Recording stand-in of the OpenSVC cluster agent API (an OpenSVC agent cannot run here).

It serves HTTPS with a test CA, checks every request (method, path, basic auth, the
``o-node`` header, JSON body shape) against what the v2 agent's handlers accept,
records it, and plays the agent's orchestration just enough for a client to go
through create, provision, start, stop and purge (states change on the next poll).
It is NOT an OpenSVC agent: anything it accepts may still be refused by a real one.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from repman.tls import ensure_server_certificates
from testkit.standins.json_http import JsonHandler, StandinServer

KINDS = ("svc", "cfg", "sec")
EXPECTS = ("provisioned", "started", "stopped", "purged", "deleted")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    user: str
    node_header: str


@dataclass
class AgentObject:
    config: dict[str, dict[str, str]]
    keys: dict[str, str] = field(default_factory=dict)
    provisioned: bool = False
    avail: str = "down"
    pending: str = ""          # global_expect applied on the next status poll


class RecordingOpenSvcAgent(StandinServer):
    """Recording stand-in: HTTPS on 127.0.0.1, one user:password, objects kept in memory."""

    def __init__(self, base: Path, user: str, password: str, address_prefix: str = "10.38.0.") -> None:
        self.user, self.password = user, password
        self.requests: list[Recorded] = []
        self.objects: dict[str, AgentObject] = {}
        self.errors: list[str] = []
        self.address_prefix = address_prefix
        self.lock = threading.Lock()
        certs = base / "opensvc-tls"
        ensure_server_certificates(certs, hosts=["127.0.0.1"])
        self.ca_file = str(certs / "ca.pem")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certs / "server-cert.pem"), str(certs / "server-key.pem"))
        context.set_alpn_protocols(["http/1.1"])   # a real v2 agent also offers h2
        super().__init__(_Handler, tls=context)

    def calls(self) -> list[tuple[str, str, str]]:
        """(method, endpoint, object path) of each request, for exact sequence checks."""
        out = []
        for r in self.requests:
            target = ""
            if isinstance(r.body, dict):
                target = r.body.get("path") or next(iter(r.body.get("data") or {}), "")
            elif r.query.get("path"):
                target = r.query["path"][0]
            out.append((r.method, r.path, target))
        return out


def _valid_path(path: Any) -> bool:
    parts = path.split("/") if isinstance(path, str) else []
    return len(parts) == 3 and parts[1] in KINDS and all(parts)


class _Handler(JsonHandler):
    server: RecordingOpenSvcAgent

    def _refuse(self, code: int, message: str) -> None:
        self.server.errors.append(message)
        self._reply(code, {"status": 1, "error": message})

    def _record(self, body: Any) -> Recorded | None:
        url = urlparse(self.path)
        auth = self.headers.get("Authorization", "")
        user = ""
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            password = ""
        rec = Recorded(self.command, url.path, parse_qs(url.query), body, user, self.headers.get("o-node", ""))
        self.server.requests.append(rec)
        if (user, password) != (self.server.user, self.server.password):
            self._reply(401, {"status": 1, "error": "authentication failed"})
            return None
        if not rec.node_header:
            self._refuse(400, "missing o-node header")
            return None
        return rec

    def do_GET(self) -> None:  # noqa: N802
        rec = self._record(None)
        if rec is None:
            return
        if rec.path != "/object_status":
            return self._refuse(404, f"no GET handler for {rec.path}")
        path = (rec.query.get("path") or [""])[0]
        if not _valid_path(path):
            return self._refuse(400, f"invalid object path {path!r}")
        with self.server.lock:
            obj = self.server.objects.get(path)
            if obj is None:
                return self._reply(200, {"object": {}, "nodes": {}})
            self._apply_pending(path, obj)
            index = sorted(self.server.objects).index(path) + 10
            node_status = {"avail": obj.avail, "provisioned": obj.provisioned, "resources": {
                "ip#1": {"status": obj.avail, "info": {"ipaddr": f"{self.server.address_prefix}{index}"}}}}
            self._reply(200, {"object": {"avail": obj.avail, "provisioned": obj.provisioned},
                              "nodes": {"node-1": {"config": {}, "status": node_status}}})

    def _apply_pending(self, path: str, obj: AgentObject) -> None:
        ge, obj.pending = obj.pending, ""
        if ge == "provisioned":
            obj.provisioned = True
        elif ge == "started":
            obj.avail = "up"
        elif ge == "stopped":
            obj.avail = "down"

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self.server.requests.append(Recorded(self.command, self.path, {}, raw, "", ""))
            return self._refuse(400, "body is not JSON")
        rec = self._record(body)
        if rec is None:
            return
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return self._refuse(400, "content type must be application/json")
        handler = {"/create": self._create, "/key": self._key, "/object_monitor": self._monitor}.get(rec.path)
        if handler is None:
            return self._refuse(404, f"no POST handler for {rec.path}")
        with self.server.lock:
            handler(body)

    def _create(self, body: dict[str, Any]) -> None:
        unknown = set(body) - {"data", "namespace", "provision", "restore", "sync", "template", "path"}
        data = body.get("data")
        if unknown or not isinstance(data, dict) or not data:
            return self._refuse(400, f"bad create body (unknown {sorted(unknown)})")
        for path, config in data.items():
            if not _valid_path(path) or not isinstance(config, dict):
                return self._refuse(400, f"bad object {path!r}")
            for section, keys in config.items():
                if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
                    return self._refuse(400, f"{path}: section {section!r} must map keys to strings")
            existing = self.server.objects.get(path)
            if existing is None:
                self.server.objects[path] = AgentObject(config=config)
            else:
                existing.config = config
        self._reply(200, {"status": 0, "data": {"out": "", "err": "", "ret": 0}})

    def _key(self, body: dict[str, Any]) -> None:
        if set(body) != {"path", "key", "data"} or not all(isinstance(v, str) for v in body.values()):
            return self._refuse(400, "key body must be {path, key, data} strings")
        obj = self.server.objects.get(body["path"])
        if obj is None or body["path"].split("/")[1] not in ("cfg", "sec"):
            return self._reply(200, {"status": 1, "error": f"object {body['path']} does not exist"})
        obj.keys[body["key"]] = body["data"]
        self._reply(200, {"status": 0, "info": f"key {body['key']} value set"})

    def _monitor(self, body: dict[str, Any]) -> None:
        path, ge = body.get("path"), body.get("global_expect")
        if set(body) - {"path", "global_expect", "local_expect", "reset_retries"} or ge not in EXPECTS:
            return self._refuse(400, f"bad object_monitor body {body!r}")
        obj = self.server.objects.get(path)
        if obj is None:
            return self._reply(200, {"status": 1, "error": [f"object {path} does not exist"]})
        kind = path.split("/")[1]
        if kind != "svc" and ge not in ("deleted", "purged"):
            return self._reply(200, {"status": 1, "error": [f"reject {ge} on {kind} objects"]})
        if ge in ("purged", "deleted"):
            del self.server.objects[path]
        else:
            obj.pending = ge
        self._reply(200, {"status": 0, "info": [f"{path} defer target state set to {ge}"],
                          "data": {"global_expect": ge}})
