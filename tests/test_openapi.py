"""GET /api/openapi.json against the real HTTP server's routes, both ways.

The server runs for real (its dispatcher, auth, grants); its watcher is not started and
its servers do not exist, so no operation can act: every probe that reaches an operation
meets a grant check (403) or an unknown cluster (404 "no cluster").
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate

from repman.api import server as server_module
from repman.api.auth import hash_password
from repman.api.config import api_config
from repman.api.openapi import ROUTES, document
from repman.api.server import ApiServer
from repman.watcher.config import parse_config
from repman.watcher.loop import Watcher
from testkit.api_client import call

SERVER = "127.0.0.1:9"          # nothing listens there
ADMIN, EVE = ("root", "root-pass"), ("eve", "eve-pass")


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[ApiServer]:
    state = tmp_path_factory.mktemp("openapi")
    wc = parse_config({
        "clusters": {"c1": {"db-servers-hosts": [SERVER, "127.0.0.1:10"], "db-servers-credential": "u:p",
                            "replication-credential": "r:p", "monitoring-datadir": str(state)}},
        "api": {"api-port": 0, "api-users": {
            "root": {"role": "admin", "password-hash": hash_password("root-pass")},
            "eve": {"role": "viewer", "password-hash": hash_password("eve-pass")}}},
    })
    srv = ApiServer(api_config(wc), Watcher(wc))
    srv.stream_lifetime = 0.2
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _answered(status: int, body: str) -> bool:
    """The dispatcher has a route for this method and path (whatever the route then said)."""
    if status == 405:
        return False
    if status == 404:
        error = json.loads(body).get("error", "")
        return not (error == "not found" or error.startswith("unknown operation"))
    return True


def _concrete(template: str, cluster: str) -> str:
    return template.replace("{cluster}", cluster).replace("{server}", SERVER)


def _documented(method: str, path: str) -> bool:
    for route in ROUTES:
        pattern = "^" + re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(route.path)) + "$"
        if route.method == method.lower() and re.match(pattern, path):
            return True
    return False


def test_document_is_valid_openapi_3_1_and_served(api):
    doc = document()
    validate(doc)                                   # raises on an invalid document
    assert doc["openapi"] == "3.1.0"
    code, headers, body = call(api.url + "/api/openapi.json")
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == json.loads(json.dumps(doc))
    ops = [(m, p) for p, item in doc["paths"].items() for m in item]
    assert len(ops) == len(set(ops)) == len(ROUTES)


def test_every_documented_route_is_answered_with_its_grant(api):
    for route in ROUTES:
        # an unknown cluster: a matched route answers "no cluster", an unmatched one "not found"
        path = _concrete(route.path, "zz")
        code, _, body = call(api.url + path, route.method.upper(), ADMIN, {} if route.method == "post" else None)
        assert _answered(code, body), (route.method, route.path, code, body)
        if "{cluster}" in route.path:
            assert code == 404 and "no cluster 'zz'" in body, (route.path, code, body)
        grant = route.grant or ""
        if not grant or grant.startswith("cluster-show"):      # every role holds cluster-show
            continue
        # a viewer lacks every other grant: 403 naming it
        code, _, body = call(api.url + _concrete(route.path, "c1"), route.method.upper(), EVE,
                             {} if route.method == "post" else None)
        assert code == 403 and f"grant {grant} needed" in body, (route.path, code, body)


def _segments(source: object) -> list[str]:
    """Every string literal of ``source`` (the server's module or its dispatcher) that could be a path segment."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(source)))  # type: ignore[arg-type]
    words = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return sorted(w for w in words if re.fullmatch(r"[a-z][a-z0-9.-]*", w))


@pytest.mark.slow   # some 1,600 real requests: about 6 s
def test_every_route_the_server_answers_is_documented(api):
    words = _segments(server_module)                       # route names, operation names, grants...
    near = _segments(server_module._Handler._route)        # the dispatcher's own: for two-segment tails
    assert {"api", "clusters", "events", "stream", "openapi.json", "switchover", "reseed"} <= set(words)
    shapes = ["/", "/api/clusters/c1", *(f"/{w}" for w in words), *(f"/api/{w}" for w in words),
              *(f"/{w}/{SERVER}" for w in words), *(f"/{w}/c1/{SERVER}" for w in words),
              *(f"/api/clusters/c1/{w}" for w in words),
              *(f"/api/clusters/c1/{w}/{v}" for w in near for v in near),
              *(f"/api/clusters/c1/servers/{SERVER}/{w}" for w in words)]
    token = json.loads(call(api.url + "/api/login", "POST", body={"username": EVE[0], "password": EVE[1]})[2])
    bearer = {"Authorization": f"Bearer {token['token']}"}      # one password check, not one per probe
    answered = []
    for path in shapes:
        for method in ("GET", "POST"):
            # a viewer: every operation stops at its grant check (403), nothing runs
            code, _, body = call(api.url + path, method, None, None, bearer)
            if _answered(code, body):
                answered.append((method, path))
                assert _documented(method, path), (method, path, code, body)
    assert set(answered) >= {(r.method.upper(), _concrete(r.path, "c1")) for r in ROUTES}


def _one_answer(sock) -> bytes:
    """One HTTP response (headers and its Content-Length body), b"" when the server closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += sock.recv(65536)
    return head


def test_a_refused_post_body_is_never_read_as_the_next_request(api: ApiServer):
    """An operation refused before its body is read (a viewer lacks the grant) must not leave that
    body on the kept-alive connection, where it was parsed as the next request line (a 400 "bad
    request syntax" naming the JSON body and the next request)."""
    import base64
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(api.url)
    body = b'{"to": "127.0.0.1:10"}'
    auth = base64.b64encode(f"{EVE[0]}:{EVE[1]}".encode())
    with socket.create_connection((where.hostname, where.port), timeout=5) as s:
        s.sendall(b"POST /api/clusters/c1/switchover HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth
                  + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                  + b"\r\n\r\n" + body)
        assert _one_answer(s).startswith(b"HTTP/1.1 403 ")
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            second = _one_answer(s)
        except (BrokenPipeError, ConnectionResetError):
            second = b""
    # Either the server closed the connection or it answered the GET itself.
    assert second == b"" or second.startswith(b"HTTP/1.1 200 "), second[:200]
