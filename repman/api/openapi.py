"""The API's route table as an OpenAPI 3.1 document (``GET /api/openapi.json``).

Why a table here rather than prose: ``tests/test_openapi.py`` probes the running
server with every route of this table (each must be answered, with the grant it
names) and with every path shape built from the literal segments of the server's
dispatcher (each one answered must be in this table), so the document cannot
silently fall behind the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERSION = "1"


@dataclass(frozen=True)
class Route:
    method: str                    # get | post (health checks also answer head and options)
    path: str                      # OpenAPI template: /api/clusters/{cluster}
    summary: str
    grant: str | None = None       # repman.api.grants name; None: no login needed
    query: tuple[tuple[str, str, str], ...] = ()   # (name, schema type, description)
    body: dict[str, str] = field(default_factory=dict)   # JSON body fields -> description
    content: str = "application/json"
    responses: tuple[int, ...] = (200,)


_HEALTH_QUERY = (("server", "string", "host:port of the server"), ("cluster", "string", "cluster name"),
                 ("lag", "number", "largest acceptable replication delay in seconds (replica checks)"))
_EVENT_QUERY = (("since", "string", "epoch seconds, ISO 8601 or an age such as 10m, 2h"),
                ("after", "integer", "only events numbered above this seq"),
                ("limit", "integer", "at most the last N events (default 100)"),
                ("kind", "string", "only this kind: decision, alert, operation, state or router"))


def _health_routes() -> list[Route]:
    out = []
    for name in ("primary", "master", "replica", "read-only"):
        role = "the writable primary" if name in ("primary", "master") else "a replica fit for reads"
        for path in (f"/{name}", f"/{name}/{{server}}", f"/{name}/{{cluster}}/{{server}}"):
            out.append(Route("get", path, f"health check: 200 when the server is {role}, 503 otherwise",
                             "cluster-show (only when api-anonymous-health is off)",
                             _HEALTH_QUERY if path == f"/{name}" else (("lag", "number", "largest delay (s)"),),
                             responses=(200, 400, 404, 503)))
    return out


ROUTES: tuple[Route, ...] = (
    Route("get", "/", "the dashboard (HTML)", "cluster-show", content="text/html"),
    *_health_routes(),
    Route("get", "/health", "the watcher answers: the clusters it monitors"),
    Route("post", "/health", "the same answer for probes that POST"),
    Route("get", "/api/openapi.json", "this document"),
    Route("get", "/metrics", "Prometheus metrics of the clusters the user sees (text exposition format)",
          "cluster-show", content="text/plain", responses=(200, 401)),
    Route("post", "/api/login", "a short-lived bearer token for a user name and password",
          body={"username": "user name", "password": "password"}, responses=(200, 400, 401, 429)),
    Route("get", "/api/audit", "the audit log entries of the user's clusters", "auditor"),
    Route("get", "/api/clusters", "one summary line per cluster the user sees", "cluster-show"),
    Route("get", "/api/clusters/{cluster}", "the cluster's status: servers, decision, operations, jobs",
          "cluster-show", responses=(200, 404)),
    Route("get", "/api/clusters/{cluster}/events", "the event history, oldest first", "cluster-show",
          _EVENT_QUERY, responses=(200, 400, 404)),
    Route("get", "/api/clusters/{cluster}/events/stream",
          "new events as server-sent events (id: seq; reconnect with Last-Event-ID); ends after "
          "api stream lifetime, 503 when too many streams are open", "cluster-show",
          (("after", "integer", "start after this seq (default: the latest)"),),
          content="text/event-stream", responses=(200, 404, 503)),
    Route("post", "/api/clusters/{cluster}/switchover", "planned switchover; 202 while it still runs",
          "cluster-switchover", (("to", "string", "host:port of the replica to promote"),),
          {"to": "host:port of the replica to promote (default: elected)"}, responses=(200, 202, 403, 409)),
    Route("post", "/api/clusters/{cluster}/failover", "failover of a dead master", "cluster-failover",
          responses=(200, 202, 403, 409)),
    Route("post", "/api/clusters/{cluster}/rolling-restart", "restart every server, one switchover",
          "cluster-rolling-restart", responses=(200, 202, 403, 409)),
    Route("post", "/api/clusters/{cluster}/reset-failover-counter", "allow automatic failovers again",
          "cluster-settings", responses=(200, 403)),
    Route("post", "/api/clusters/{cluster}/servers/{server}/maintenance", "put a server in maintenance or back",
          "db-maintenance", (("state", "string", "on or off"),), {"state": "on or off"},
          responses=(200, 400, 403, 404)),
    Route("post", "/api/clusters/{cluster}/servers/{server}/reseed", "rebuild a replica from a donor",
          "db-reseed", (("from", "string", "host:port of the donor"),), {"from": "host:port of the donor"},
          responses=(200, 202, 403, 409)),
)


def _operation(route: Route) -> dict[str, Any]:
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in ("cluster", "server") if f"{{{n}}}" in route.path]
    params += [{"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
               for n, t, d in route.query]
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method}{route.path}",
        "responses": {str(code): {"description": _REASONS.get(code, "see the error field")}
                      for code in route.responses},
    }
    op["responses"]["200"]["content"] = {route.content: {"schema": {"type": "string"} if route.content != _JSON
                                                         else {"type": "object"}}}
    if route.grant:
        op["security"] = [{"basic": []}, {"bearer": []}]
        op["x-repman-grant"] = route.grant
    if params:
        op["parameters"] = params
    if route.body:
        op["requestBody"] = {"required": False, "content": {_JSON: {"schema": {
            "type": "object", "properties": {k: {"type": "string", "description": v} for k, v in route.body.items()},
        }}}}
    return op


_JSON = "application/json"
_REASONS = {200: "done", 202: "still running: follow last_operation in the cluster's status", 400: "bad input",
            401: "authentication required", 403: "the user lacks the grant", 404: "no such cluster or server",
            409: "refused or failed: the sentence says why", 429: "too many failed logins", 503: "not healthy"}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``ROUTES``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "repman watcher API", "version": VERSION,
                 "description": "Status, events and operations of the MariaDB clusters a repman watcher monitors. "
                                "Each call needs a grant on its cluster (x-repman-grant)."},
        "paths": paths,
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                                           "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


__all__ = ["ROUTES", "Route", "document"]
