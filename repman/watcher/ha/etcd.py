"""A small etcd v3 client over the JSON gateway (``/v3/kv/range``, ``/v3/kv/txn``, ``/v3/lease/*``).

Why this client and not a library: python-etcd3 is unmaintained (no release since 2020) and pulls
in grpcio and protobuf; the gRPC gateway that every etcd 3.x server exposes speaks JSON over plain
HTTP(S), which is what Patroni does too. ``httpx`` (already the OpenSVC backend's client) gives
timeouts, TLS with a CA and a client certificate, and connection reuse. The client knows only the
handful of calls the watcher needs: range, put, delete, txn, lease grant/keepalive/revoke, auth.

Every call has a short timeout and tries the endpoints in turn (starting with the last that
answered): an etcd without quorum does not answer a linearizable read nor a lease renewal, which
surfaces here as ``EtcdUnavailable`` - the caller must then stop acting, never wait forever.
Keys and values are bytes on the wire, base64 in JSON; int64 fields come back as strings and
zero-valued fields are omitted, both handled here once.
"""

from __future__ import annotations

import base64
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Sequence

import httpx

from repman.errors import RepmanError


class EtcdError(RepmanError):
    """etcd answered with an error (a refused request: bad auth, unknown lease...)."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered in time: etcd is down, cut off, or has lost its quorum."""


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with ``prefix`` (etcd's rule: last byte + 1)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KeyValue:
        return cls(unb64(raw.get("key")), unb64(raw.get("value")), int(raw.get("create_revision", 0)),
                   int(raw.get("mod_revision", 0)), int(raw.get("version", 0)), int(raw.get("lease", 0)))


@dataclass(frozen=True)
class TlsFiles:
    """TLS towards etcd: the CA that signed its certificate, and an optional client certificate."""

    ca: str = ""
    cert: str = ""
    key: str = ""


def ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    """Verify etcd against ``tls.ca``; present ``tls.cert`` when set (etcd's --client-cert-auth)."""
    try:
        context = ssl.create_default_context(cafile=tls.ca)
        if tls.cert:
            context.load_cert_chain(tls.cert, tls.key or None)
    except (OSError, ssl.SSLError) as exc:
        raise EtcdError(f"etcd TLS files ({tls.ca}, {tls.cert or 'no client certificate'}): {exc}") from None
    return context


# Txn building blocks (the gateway's JSON names of etcdserverpb.Compare / RequestOp).
def compare_create(key: bytes, revision: int = 0) -> dict[str, Any]:
    """The key's create_revision equals ``revision`` (0: the key does not exist)."""
    return {"key": b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": str(revision)}


def compare_mod(key: bytes, revision: int) -> dict[str, Any]:
    return {"key": b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": str(revision)}


def compare_value(key: bytes, value: bytes) -> dict[str, Any]:
    return {"key": b64(key), "result": "EQUAL", "target": "VALUE", "value": b64(value)}


def compare_lease(key: bytes, lease: int) -> dict[str, Any]:
    return {"key": b64(key), "result": "EQUAL", "target": "LEASE", "lease": str(lease)}


def op_put(key: bytes, value: bytes, lease: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        body["lease"] = str(lease)
    return {"request_put": body}


def op_get(key: bytes) -> dict[str, Any]:
    return {"request_range": {"key": b64(key)}}


def op_delete(key: bytes) -> dict[str, Any]:
    return {"request_delete_range": {"key": b64(key)}}


class EtcdClient:
    """Thread-safe: one ``httpx.Client`` (a connection pool), endpoints tried in turn."""

    def __init__(self, endpoints: Sequence[str], tls: TlsFiles | None = None, user: str = "",
                 password: str = "", timeout: float = 1.0) -> None:
        if not endpoints:
            raise EtcdError("no etcd endpoint given")
        scheme = "https" if tls is not None and tls.ca else "http"
        self.endpoints = [e if "://" in e else f"{scheme}://{e}" for e in endpoints]
        self._http = httpx.Client(timeout=timeout, verify=ssl_context(tls) if tls is not None and tls.ca else True)
        self._user, self._password = user, password
        self._token = ""
        self._preferred = 0
        self._mutex = threading.Lock()

    def close(self) -> None:
        self._http.close()

    # -- transport ------------------------------------------------------------------------
    def _post_one(self, endpoint: str, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": self._token} if self._token else {}
        return self._http.post(f"{endpoint}/v3/{path}", json=body, headers=headers)

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>`` on the first endpoint that answers; its JSON answer."""
        errors: list[str] = []
        n = len(self.endpoints)
        for i in range(n):
            index = (self._preferred + i) % n
            endpoint = self.endpoints[index]
            try:
                if self._user and not self._token:
                    self._authenticate(endpoint)
                response = self._post_one(endpoint, path, body)
                if response.status_code == 401 and self._user:   # the token expired: once more
                    self._authenticate(endpoint)
                    response = self._post_one(endpoint, path, body)
            except httpx.HTTPError as exc:
                errors.append(f"{endpoint}: {type(exc).__name__}")
                continue
            if response.status_code >= 500 and _retryable(response):
                errors.append(f"{endpoint}: {_message(response)}")
                continue
            if response.status_code != 200:
                raise EtcdError(f"etcd {path}: {_message(response)}")
            self._preferred = index
            answer: dict[str, Any] = response.json()
            return answer
        raise EtcdUnavailable(f"etcd unreachable ({'; '.join(errors)})")

    def _authenticate(self, endpoint: str) -> None:
        with self._mutex:
            self._token = ""
            response = self._http.post(f"{endpoint}/v3/auth/authenticate",
                                       json={"name": self._user, "password": self._password})
            if response.status_code != 200:
                raise EtcdError(f"etcd authentication of user {self._user!r} refused: {_message(response)}")
            self._token = str(response.json().get("token", ""))

    # -- key-value ------------------------------------------------------------------------
    def get(self, key: bytes) -> KeyValue | None:
        kvs = self.call("kv/range", {"key": b64(key)}).get("kvs") or []
        return KeyValue.from_json(kvs[0]) if kvs else None

    def get_prefix(self, prefix: bytes) -> list[KeyValue]:
        answer = self.call("kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        return [KeyValue.from_json(kv) for kv in answer.get("kvs") or []]

    def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        """Write ``key``; the new revision."""
        body = op_put(key, value, lease)["request_put"]
        return int(self.call("kv/put", body).get("header", {}).get("revision", 0))

    def delete(self, key: bytes) -> int:
        return int(self.call("kv/deleterange", {"key": b64(key)}).get("deleted", 0))

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]] | None = None) -> tuple[bool, list[dict[str, Any]]]:
        """An atomic if/then/else: (whether every compare held, the responses of the branch taken)."""
        answer = self.call("kv/txn", {"compare": compare, "success": success, "failure": failure or []})
        return bool(answer.get("succeeded", False)), list(answer.get("responses") or [])

    def create(self, key: bytes, value: bytes, lease: int = 0) -> bool:
        """Write ``key`` only if it does not exist; True when this call created it."""
        ok, _ = self.txn([compare_create(key)], [op_put(key, value, lease)])
        return ok

    # -- leases ---------------------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        answer = self.call("lease/grant", {"TTL": str(ttl)})
        if answer.get("error"):
            raise EtcdError(f"etcd lease grant: {answer['error']}")
        return int(answer["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew ``lease``; its TTL left (0: the lease is gone - expired or revoked)."""
        answer = self.call("lease/keepalive", {"ID": str(lease)})
        result = answer.get("result") or {}
        if "error" in answer and not result:
            raise EtcdUnavailable(f"etcd lease keepalive: {answer['error'].get('message', answer['error'])}")
        return int(result.get("TTL", 0))

    def revoke(self, lease: int) -> None:
        try:
            self.call("kv/lease/revoke", {"ID": str(lease)})
        except EtcdError as exc:
            if "not found" not in str(exc):
                raise


def _message(response: httpx.Response) -> str:
    try:
        raw = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return str(raw.get("error") or raw.get("message") or f"HTTP {response.status_code}")


def _retryable(response: httpx.Response) -> bool:
    """A member without a leader or a timed-out request: another endpoint may do better."""
    text = _message(response).lower()
    return any(w in text for w in ("leader", "timed out", "timeout", "unavailable", "stopped", "deadline"))


__all__ = ["EtcdClient", "EtcdError", "EtcdUnavailable", "KeyValue", "TlsFiles", "compare_create", "compare_lease",
           "compare_mod", "compare_value", "op_delete", "op_get", "op_put", "prefix_end"]
