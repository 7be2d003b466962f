"""API security: grants per cluster, tenants, login tokens, throttling, audit, mutual TLS, hostile input.

The watcher behind the API monitors servers that are not started (connection
refused): these tests are about who may see and do what over HTTP, not about HA
behaviour, which tests/test_api.py covers on a real cluster.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from repman.api.auth import hash_password
from repman.api.config import api_config
from repman.api.server import ApiServer
from repman.local.ports import free_port_block
from repman.tls import ensure_server_certificates
from repman.watcher.config import parse_config
from repman.watcher.loop import Watcher
from testkit.polling import wait_until

PASSWORDS = {"ops": "ops-pw-1", "tenant_a": "tenant-a-pw", "viewer_b": "viewer-b-pw", "audit": "audit-pw",
             "audit_a": "audit-a-pw"}
USERS = {
    "ops": {"role": "operator", "password-hash": hash_password(PASSWORDS["ops"])},
    "tenant_a": {"role": "operator", "clusters": ["alpha"], "password-hash": hash_password(PASSWORDS["tenant_a"])},
    "viewer_b": {"role": "viewer", "clusters": ["beta"], "grants": ["db-maintenance"],
                 "password-hash": hash_password(PASSWORDS["viewer_b"])},
    "audit": {"role": "auditor", "password-hash": hash_password(PASSWORDS["audit"])},
    "audit_a": {"role": "auditor", "clusters": ["alpha"], "password-hash": hash_password(PASSWORDS["audit_a"])},
}


class Api:
    """An ApiServer over a Watcher whose monitors are never started."""

    def __init__(self, tmp_path: Path, **api: Any) -> None:
        first = free_port_block(4)
        clusters = {name: {"db-servers-hosts": [f"127.0.0.1:{first + 2 * i}", f"127.0.0.1:{first + 2 * i + 1}"],
                           "db-servers-credential": "admin:db-admin-pw", "replication-credential": "repl:db-repl-pw",
                           "monitoring-datadir": str(tmp_path / "state" / name), "monitoring-ticker": 0.2}
                    for i, name in enumerate(("alpha", "beta"))}
        self.config = parse_config({"clusters": clusters, "api": {"api-port": 0, "api-users": USERS,
                                                                 "api-audit-log": str(tmp_path / "audit.log"),
                                                                 **api}})
        self.watcher = Watcher(self.config)
        self.server = ApiServer(api_config(self.config), self.watcher)
        self.watcher.start()  # monitors tick against refused connections all along
        self.server.start()

    def close(self) -> None:
        self.server.stop()
        self.watcher.stop(timeout=2)

    def call(self, path: str, method: str = "GET", user: str | None = None, body: Any = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None,
             context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], str]:
        hdrs = dict(headers or {})
        if user:
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None and "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(data))
        if self.server.api.tls:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.server.port, timeout=30, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k: v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
        finally:
            conn.close()


@pytest.fixture
def api(tmp_path):
    a = Api(tmp_path, **{"api-login-max-failures": 100})  # these tests fail logins on purpose
    yield a
    a.close()


def _names(body: str) -> list[str]:
    return [c["name"] for c in json.loads(body)["clusters"]]


def test_tenants_see_only_their_clusters_and_grants_gate_each_operation(api):
    assert _names(api.call("/api/clusters", user="ops")[2]) == ["alpha", "beta"]
    assert _names(api.call("/api/clusters", user="tenant_a")[2]) == ["alpha"]
    assert _names(api.call("/api/clusters", user="viewer_b")[2]) == ["beta"]
    # another tenant's cluster answers exactly like a cluster that does not exist
    hidden, missing = api.call("/api/clusters/beta", user="tenant_a"), api.call("/api/clusters/zz", user="tenant_a")
    assert hidden[0] == missing[0] == 404
    assert api.call("/api/clusters/beta/switchover", "POST", "tenant_a", {})[0] == 404
    page = api.call("/", user="tenant_a")[2]
    assert "alpha" in page and "beta" not in page
    # grants: a viewer with db-maintenance may set maintenance but not switch over
    code, _, body = api.call("/api/clusters/beta/switchover", "POST", "viewer_b", {})
    assert code == 403 and "grant cluster-switchover needed" in body
    port = api.config.clusters["beta"]["db-servers-hosts"][1].port
    code, _, body = api.call(f"/api/clusters/beta/servers/127.0.0.1:{port}/maintenance", "POST", "viewer_b",
                             {"state": "on"})
    assert code == 200 and json.loads(body)["maintenance"] is True
    assert api.call("/api/clusters/alpha/reset-failover-counter", "POST", "tenant_a", {})[0] == 200
    assert api.call("/api/clusters/alpha/reset-failover-counter", "POST", "audit", {})[0] == 403
    assert api.call("/api/audit", user="tenant_a")[0] == 403


def test_login_returns_a_short_lived_bearer_token_and_bad_tokens_are_refused(api):
    code, _, body = api.call("/api/login", "POST", body={"username": "tenant_a", "password": PASSWORDS["tenant_a"]})
    assert code == 200
    answer = json.loads(body)
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 900
    claims = jwt.decode(answer["token"], options={"verify_signature": False})
    assert claims["sub"] == "tenant_a" and claims["exp"] - claims["iat"] == 900
    bearer = {"Authorization": f"Bearer {answer['token']}"}
    assert _names(api.call("/api/clusters", headers=bearer)[2]) == ["alpha"]
    assert api.call("/api/clusters/beta", headers=bearer)[0] == 404
    assert api.call("/api/login", "POST", body={"username": "tenant_a", "password": "nope"})[0] == 401
    assert api.call("/api/login", "GET")[0] == 405
    now = int(time.time())
    forged = jwt.encode({"sub": "ops", "iat": now, "exp": now + 60, "iss": "repman"},
                        "a-guessed-key-of-thirty-two-bytes!", "HS256")
    expired = api.server.tokens.issue("ops")
    expired = jwt.encode({**jwt.decode(expired, options={"verify_signature": False}), "exp": now - 5},
                         api.server.tokens._key, "HS256")
    unsigned = jwt.encode({"sub": "ops", "iat": now, "exp": now + 60, "iss": "repman"}, None, "none")
    for token in (forged, expired, unsigned, "not.a.jwt", ""):
        assert api.call("/api/clusters", headers={"Authorization": f"Bearer {token}"})[0] == 401, token
    # a token outlives nothing: its user's grants are read at each call
    api.server.auth.users.pop("tenant_a")
    assert api.call("/api/clusters", headers=bearer)[0] == 401


def test_failed_logins_are_throttled_per_address_and_user(tmp_path):
    api = Api(tmp_path, **{"api-login-max-failures": 3, "api-login-window": 2})
    try:
        for _ in range(3):
            assert api.call("/api/login", "POST", body={"username": "ops", "password": "guess"})[0] == 401
        code, headers, _ = api.call("/api/login", "POST", body={"username": "ops", "password": PASSWORDS["ops"]})
        assert code == 429 and int(headers["Retry-After"]) >= 1
        assert api.call("/api/clusters", user="ops")[0] == 429  # basic auth is throttled the same way
        time.sleep(2.2)
        assert api.call("/api/login", "POST", body={"username": "ops", "password": PASSWORDS["ops"]})[0] == 200
    finally:
        api.close()


def test_every_call_is_audited_for_auditors_of_the_cluster_without_secrets(api, tmp_path):
    api.call("/api/clusters/alpha/reset-failover-counter", "POST", "tenant_a", {})
    api.call("/api/clusters/beta/switchover", "POST", "viewer_b", {})
    api.call("/api/login", "POST", body={"username": "ops", "password": "wrong-one"})
    token = json.loads(api.call("/api/login", "POST", body={"username": "ops", "password": PASSWORDS["ops"]})[2])
    api.call("/primary?server=127.0.0.1:1")  # health checks are not audited (HAProxy calls them every second)
    code, _, body = api.call("/api/audit", user="audit")
    assert code == 200
    entries = json.loads(body)["entries"]
    reset = next(e for e in entries if e["path"] == "/api/clusters/alpha/reset-failover-counter")
    assert (reset["user"], reset["from"], reset["method"], reset["status"], reset["outcome"], reset["cluster"]) == \
        ("tenant_a", "127.0.0.1", "POST", 200, "ok", "alpha")
    refused = next(e for e in entries if e["path"] == "/api/clusters/beta/switchover")
    assert (refused["user"], refused["status"], refused["outcome"]) == ("viewer_b", 403, "refused")
    assert any(e["path"] == "/api/login" and e["status"] == 401 and e["user"] == "ops (failed)" for e in entries)
    assert not any(e["path"].startswith("/primary") for e in entries)
    scoped = json.loads(api.call("/api/audit", user="audit_a")[2])["entries"]
    assert scoped and {e["cluster"] for e in scoped} == {"alpha"}
    text = (tmp_path / "audit.log").read_text()
    assert [json.loads(line)["path"] for line in text.splitlines()][:2] == [
        "/api/clusters/alpha/reset-failover-counter", "/api/clusters/beta/switchover"]
    for secret in [*PASSWORDS.values(), "wrong-one", token["token"], "db-admin-pw", "db-repl-pw", "Basic "]:
        assert secret not in text and secret not in body


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_hostile_input_gets_4xx_without_traceback_and_the_api_survives(api):
    p = api.server.port
    cases = [
        ("/api/clusters/alpha/switchover", "POST", "ops", b"{not json", {}),
        ("/api/clusters/alpha/switchover", "POST", "ops", b"[1, 2]", {}),
        ("/api/clusters/alpha/switchover", "POST", "ops", b"x" * (65 * 1024), {}),
        ("/api/clusters/alpha/switchover", "POST", "ops", b"{}", {"Content-Length": "-5"}),
        ("/api/clusters/alpha/switchover", "POST", "ops", b"{}", {"Content-Length": "12abc"}),
        ("/api/login", "POST", None, b'{"username": 5, "password": []}', {}),
        ("/api/login", "POST", None, b"\xff\xfe garbage", {}),
        ("/api/clusters/alpha/servers/..%2F..%2Fetc%2Fpasswd/maintenance", "POST", "ops", b'{"state":"on"}', {}),
        ("/api/clusters/alpha/servers/127.0.0.1:99999/maintenance", "POST", "ops", b'{"state":"on"}', {}),
        ("/api/clusters/..%2F..%2Fetc/switchover", "POST", "ops", b"{}", {}),
        ("/api/clusters/%00%0d%0aSet-Cookie:%20x=1", "GET", "ops", None, {}),
        ("/api/clusters/" + "a" * 5000, "GET", "ops", None, {}),
        ("/primary/alpha/%0d%0aX-Injected:%201", "GET", None, None, {}),
        ("/replica?server=127.0.0.1:1&lag=NaNx", "GET", None, None, {}),
        ("/api/clusters/alpha/switchover", "POST", "ops", b'{"to": "127.0.0.1:1\\r\\nX: y"}', {}),
        ("/api/clusters", "GET", None, None, {"Authorization": "Basic !!!notbase64"}),
        ("/api/clusters", "GET", None, None, {"Authorization": "Bearer " + "A" * 4000}),
        ("/api/clusters/alpha/failover", "POST", "ops", b'{}', {"Origin": "http://evil.example/%0d%0aX: 1"}),
    ]
    for path, method, user, raw, headers in cases:
        code, got_headers, body = api.call(path, method, user, raw=raw, headers=headers)
        assert 400 <= code < 500, (path, code, body)
        assert "Traceback" not in body and "X-Injected" not in got_headers and "Set-Cookie" not in got_headers
    # malformed requests below the HTTP layer: the stdlib answers 400, the thread survives
    for request in (b"GARBAGE\r\n\r\n", b"GET /api/clusters HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
                    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello",
                    b"POST /api/clusters/alpha/failover HTTP/1.1\r\nHost: x\r\nOrigin: http://evil\r\n.example\r\n"
                    b"Content-Length: 2\r\n\r\n{}"):
        answer = _raw(p, request)
        status_4xx = answer.startswith(b"HTTP/1.") and answer.split(b" ")[1][:1] == b"4"
        http09_4xx = b"Error code: 4" in answer  # the stdlib answers an HTTP/0.9-looking line without a status line
        assert answer == b"" or status_4xx or http09_4xx, answer[:200]
        assert b"Traceback" not in answer
    assert api.call("/health")[0] == 200
    assert api.call("/api/clusters", user="ops")[0] == 200
    # the watcher survives: every monitor thread alive and still ticking
    ticks = {n: m.ticks for n, m in api.watcher.monitors.items()}
    wait_until(lambda: all(m.ticks > ticks[n] for n, m in api.watcher.monitors.items()), timeout=20,
               what="a new tick of every monitor")
    assert all(t.thread.is_alive() for t in api.watcher.threads)
    assert all(m.ticks > ticks[n] for n, m in api.watcher.monitors.items())


def test_mutual_tls_refuses_clients_without_a_certificate_of_the_client_ca(tmp_path):
    ca_dir = tmp_path / "ca"
    ensure_server_certificates(tmp_path / "server", hosts=["127.0.0.1"], ca_dir=ca_dir)
    ensure_server_certificates(tmp_path / "client", hosts=["operator-laptop"], ca_dir=ca_dir)
    api = Api(tmp_path, **{"api-tls-cert": str(tmp_path / "server" / "server-cert.pem"),
                           "api-tls-key": str(tmp_path / "server" / "server-key.pem"),
                           "api-tls-client-ca": str(ca_dir / "ca.pem")})
    try:
        ctx = ssl.create_default_context(cafile=str(ca_dir / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            api.call("/api/clusters", user="ops", context=ctx)
        ctx.load_cert_chain(str(tmp_path / "client" / "server-cert.pem"), str(tmp_path / "client" / "server-key.pem"))
        assert api.call("/api/clusters", user="ops", context=ctx)[0] == 200
        assert api.call("/api/clusters", context=ctx)[0] == 401  # the certificate admits; the user still logs in
    finally:
        api.close()


@pytest.mark.parametrize("spec, message", [
    ({"grants": ["cluster-nuke"]}, "api.api-users.bob.grants: unknown grant 'cluster-nuke'"),
    ({"clusters": [""]}, "api.api-users.bob.clusters: expected a list of names"),
    ({"clusters": 5}, "api.api-users.bob.clusters: expected a list of names"),
])
def test_bad_grants_and_clusters_are_one_line_errors(spec, message):
    from repman.api.auth import parse_users
    from repman.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        parse_users({"bob": {"role": "viewer", "password-hash": hash_password("b"), **spec}})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_operations_from_the_shell_are_audited_too(tmp_path):
    import subprocess
    import sys

    import yaml
    port = free_port_block(2)
    audit = tmp_path / "audit.log"
    config = tmp_path / "repman.yaml"
    config.write_text(yaml.safe_dump({
        "clusters": {"alpha": {"db-servers-hosts": [f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"],
                               "db-servers-credential": "admin:db-admin-pw", "replication-credential": "r:db-repl-pw",
                               "monitoring-datadir": str(tmp_path / "state")}},
        "api": {"api-audit-log": str(audit)}}))
    for args, code in ((["maintenance", "on", f"127.0.0.1:{port + 1}"], 0),
                       (["maintenance", "on", "127.0.0.1:1"], 2)):
        done = subprocess.run([sys.executable, "-m", "repman.cli", "--config", str(config), *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == code, done.stderr
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["path"], e["status"], e["from"], e["cluster"]) for e in entries] == [
        (f"maintenance on 127.0.0.1:{port + 1}", 200, "cli", "alpha"),
        ("maintenance on 127.0.0.1:1", 400, "cli", "alpha")]
    assert all(e["user"].endswith("(cli)") for e in entries)
    assert "db-admin-pw" not in audit.read_text()
