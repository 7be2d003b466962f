"""The watcher's HTTP side: JSON status and operations, HAProxy health checks, a dashboard.

Served by ``repman watch`` from a thread (stdlib ``http.server``), answering from
the monitors' last tick, so a request never opens a database connection. An
operator's switchover/failover is handed to the cluster's operation runner (the
monitor's guards and limits, its thread) and the answer waits for its result. Access: HTTP basic auth against salted
hashes or a bearer token from ``POST /api/login``; each call needs a grant
(``repman.api.grants``) on its cluster, and a user sees only its clusters (an
unseen cluster answers 404 like an unknown one). Failed logins are throttled and
every call but the health checks is audited (``GET /api/audit`` for ``auditor``).
Health endpoints answer only with a status code and the role, never a credential.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2

from repman.api.audit import AuditLog
from repman.api.auth import ApiUser, Authenticator
from repman.api.grants import role_with
from repman.api.openapi import document as openapi_document
from repman.api.ratelimit import LoginThrottle
from repman.api.tokens import TokenIssuer
from repman.db import ServerAddress
from repman.errors import ConfigError, RepmanError
from repman.paths import templates_dir
from repman.watcher.election import same_server
from repman.watcher.metrics import CONTENT_TYPE as METRICS_TYPE, exposition
from repman.watcher.monitor import ClusterMonitor
from repman.watcher.result import OperationResult

if TYPE_CHECKING:
    from repman.api.config import ApiConfig
    from repman.watcher.loop import Watcher

logger = logging.getLogger("repman.api")
MAX_BODY = 64 * 1024
OPERATION_GRANTS = {"switchover": "cluster-switchover", "failover": "cluster-failover",
                    "rolling-restart": "cluster-rolling-restart", "reset-failover-counter": "cluster-settings"}
OPERATION_WAIT = 300.0   # an operator's switchover/failover answered synchronously up to this (seconds)
MAX_STREAMS = 8          # open event streams; each holds one of the server's threads
STREAM_LIFETIME = 300.0  # seconds before a stream ends (EventSource reconnects with Last-Event-ID)
STREAM_POLL = 0.5        # how often a stream reads the event history
EVENTS_LIMIT = 100       # GET .../events without ?limit=
STALE_TICKS = 3          # health answers 503 when the monitor's data is older than this many tickers (+2 s)


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _dashboard_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "dashboard")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )


class ApiServer:
    """Owns the listening socket and the serving thread."""

    def __init__(self, api: ApiConfig, watcher: Watcher) -> None:
        self.api = api
        self.watcher = watcher
        self.tokens = TokenIssuer(api.jwt_secret or None, api.jwt_ttl)
        self.auth = Authenticator(api.users, self.tokens)
        self.throttle = LoginThrottle(api.login_max_failures, api.login_window)
        try:
            self.audit = AuditLog(api.audit_log)
        except OSError as exc:
            raise ConfigError("api.api-audit-log", f"cannot open {api.audit_log}: {exc.strerror}") from None
        self.templates = _dashboard_env()
        self.operation_wait = OPERATION_WAIT
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.stream_lifetime = STREAM_LIFETIME
        self.stopping = threading.Event()     # ends the event streams when the server stops
        handler = type("Handler", (_Handler,), {"app": self})
        self.httpd = ThreadingHTTPServer((api.bind, api.port), handler)
        self.httpd.daemon_threads = True
        if api.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                context.load_cert_chain(api.tls_cert, api.tls_key)
            except (OSError, ssl.SSLError) as exc:
                self.httpd.server_close()
                raise ConfigError("api.api-tls-cert", f"cannot load {api.tls_cert} / {api.tls_key}: {exc}") from None
            if api.tls_client_ca:
                try:
                    context.load_verify_locations(cafile=api.tls_client_ca)
                except (OSError, ssl.SSLError) as exc:
                    self.httpd.server_close()
                    raise ConfigError("api.api-tls-client-ca", f"cannot load {api.tls_client_ca}: {exc}") from None
                context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no handshake
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="repman-api", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.api.bind if self.api.bind not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"{'https' if self.api.tls else 'http'}://{host}:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    # -- application -----------------------------------------------------------------------
    def monitor(self, name: str | None, user: ApiUser | None = None) -> ClusterMonitor:
        monitors = {k: m for k, m in self.watcher.monitors.items() if user is None or user.sees(k)}
        if name is None:
            if len(monitors) == 1:
                return next(iter(monitors.values()))
            raise HttpError(400, f"name a cluster: {', '.join(monitors)}")
        if name not in monitors:  # another tenant's cluster is as unknown as a missing one
            raise HttpError(404, f"no cluster {name[:64]!r}")
        return monitors[name]

    def fresh(self, monitor: ClusterMonitor) -> bool:
        if monitor.ticks == 0:
            return False
        age = time.monotonic() - monitor.last_tick_at
        return age <= STALE_TICKS * monitor.cfg.ticker + 2.0

    def summary(self, user: ApiUser | None = None) -> list[dict[str, Any]]:
        out = []
        for name, m in self.watcher.monitors.items():
            if user is not None and not user.sees(name):
                continue
            st = m.status()
            out.append({
                "name": name, "master": st["master"], "failover_mode": st["failover_mode"],
                "decision": st["decision"]["sentence"] if st["decision"] else None,
                "servers": len(st["servers"]), "operation": st["operation"],
                "failover_count": st["failover_count"],
            })
        return out

    def health(self, kind: str, monitor: ClusterMonitor, server: ServerAddress | None,
               lag: float | None) -> tuple[int, dict[str, Any]]:
        """(status code, small body) for /primary and /replica."""
        if server is None:
            raise HttpError(400, "give the server as ?server=host:port or /primary/<cluster>/<host:port>")
        target = next((a for a in monitor.cfg.servers if same_server(a, server)), None)
        if target is None:
            raise HttpError(404, f"{server} is not a server of cluster {monitor.name}")
        st = monitor.status()
        entry = next(s for s in st["servers"] if s["url"] == target.url)
        body = {"cluster": monitor.name, "server": target.url, "role": entry["role"], "state": entry["state"],
                "seconds_behind_master": entry["seconds_behind_master"], "read_only": entry["read_only"]}
        if not self.fresh(monitor):
            body["reason"] = "the monitor has no recent data"
            return 503, body
        if kind == "primary":
            # A master in maintenance keeps its writes (maintenance only stops its failover).
            ok = (entry["role"] == "master" and entry["state"] in ("Master", "Maintenance")
                  and entry["reachable"] and entry["read_only"] is False)
            return (200 if ok else 503), body
        max_lag = monitor.cfg.seconds("failover-max-slave-delay") if lag is None else lag
        return (200 if monitor.replica_fit(target, max_lag) else 503), body

    def dashboard(self, user: ApiUser | None = None) -> str:
        clusters = [m.status() for k, m in self.watcher.monitors.items() if user is None or user.sees(k)]
        return self.templates.get_template("index.html.j2").render(
            clusters=clusters, generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        )


class _Handler(BaseHTTPRequestHandler):
    app: ApiServer
    # The audit record of the request being answered (reset by _dispatch for each request).
    _who: str
    _cluster: str | None
    _status: int
    _body_read: bool
    server_version = "repman"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    # -- plumbing --------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode()
        self._send(status, body, "application/json", headers)

    def _throttled(self, name: str | None) -> None:
        keys = [f"ip:{self.client_address[0]}"] + ([f"user:{name}"] if name else [])
        wait = self.app.throttle.retry_after(*keys)
        if wait > 0:
            raise HttpError(429, "too many failed logins: try again later", {"Retry-After": str(int(wait) + 1)})

    def _failed_login(self, name: str | None) -> None:
        self.app.throttle.failed(*([f"ip:{self.client_address[0]}"] + ([f"user:{name}"] if name else [])))

    def _user(self, grant: str, cluster: str | None = None) -> ApiUser | None:
        """The caller, holding ``grant`` (on ``cluster`` when named); 401/403/404/429 otherwise."""
        header = self.headers.get("Authorization")
        claimed = self.app.auth.basic_name(header)
        if header:
            self._throttled(claimed)
        user = self.app.auth.authenticate(header)
        if user is None:
            if header:
                self._failed_login(claimed)
            if grant == "cluster-show" and self.app.api.anonymous_read:
                return None
            raise HttpError(401, "authentication required",
                            {"WWW-Authenticate": 'Basic realm="repman", charset="UTF-8"'})
        self._who = user.name
        if cluster is not None:
            self.app.monitor(cluster, user)  # 404 for a cluster the user does not see
        if not user.may(grant, cluster):
            raise HttpError(403, f"user {user.name} ({user.role}) may not do this: grant {grant} needed "
                                 f"({role_with(grant)} role needed)")
        return user

    def _body(self) -> dict[str, Any]:
        text = (self.headers.get("Content-Length") or "0").strip()
        if not text.isdigit():
            self.close_connection = True
            raise HttpError(400, "bad Content-Length")
        length = int(text)
        if length > MAX_BODY:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise HttpError(413, "request body too large")
        raw = self.rfile.read(length) if length else b""
        self._body_read = True
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise HttpError(400, "the body must be JSON") from None
        if not isinstance(data, dict):
            raise HttpError(400, "the body must be a JSON object")
        return data

    def _same_origin(self) -> None:
        """Refuse cross-site browser POSTs (a browser may replay cached basic credentials)."""
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != (self.headers.get("Host") or ""):
            raise HttpError(403, "cross-origin request refused")

    def _dispatch(self) -> None:
        self._who, self._cluster, self._status = "anonymous", None, 0
        self._body_read = False
        try:
            self._dispatch_inner()
        finally:
            if not self._body_read and (self.headers.get("Content-Length") or "0").strip() not in ("", "0"):
                # Refused before its body was read: the unread bytes would be taken for the next
                # request on this kept-alive connection (a 501 for a "method" made of JSON).
                self.close_connection = True
            path = urlsplit(self.path).path
            if not path.startswith(("/primary", "/master", "/replica", "/read-only", "/health", "/metrics")):
                try:
                    self.app.audit.record(self._who, self.client_address[0], self.command, path, self._status,
                                          self._cluster)
                except OSError as exc:  # a full disk must not take the API down; say it in the log
                    logger.error("audit log %s: %s", self.app.api.audit_log, exc.strerror)

    def _dispatch_inner(self) -> None:
        try:
            self._route()
        except HttpError as exc:
            self._json(exc.status, {"error": str(exc)}, exc.headers)
        except RepmanError as exc:
            self._json(400, {"error": str(exc)})
        except Exception:  # noqa: BLE001 - answer 500, keep serving, log the detail server-side
            logger.exception("api request %s %s failed", self.command, self.path)
            self._json(500, {"error": "internal error (see the watcher log)"})

    do_GET = do_POST = do_HEAD = do_OPTIONS = lambda self: self._dispatch()  # noqa: E731

    # -- routes ----------------------------------------------------------------------------
    def _route(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        method = self.command
        if method == "POST":
            self._same_origin()
        if parts and parts[0] in ("primary", "master", "replica", "read-only"):
            if method == "POST":
                raise HttpError(405, "health checks are GET, HEAD or OPTIONS")
            return self._health("primary" if parts[0] in ("primary", "master") else "replica", parts[1:], query)
        if parts == ["health"]:
            return self._json(200, {"status": "ok", "clusters": list(self.app.watcher.monitors)})
        if method == "OPTIONS":
            raise HttpError(405, "OPTIONS is only for health checks")
        if parts == [] and method in ("GET", "HEAD"):
            user = self._user("cluster-show")
            return self._send(200, self.app.dashboard(user).encode(), "text/html; charset=utf-8", {
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            })
        if parts == ["metrics"] and method in ("GET", "HEAD"):    # Prometheus scrape: a viewer's clusters
            user = self._user("cluster-show")
            seen = None if user is None else [c for c in self.app.watcher.monitors if user.sees(c)]
            return self._send(200, exposition(self.app.watcher.monitors, seen), METRICS_TYPE)
        if parts[:1] != ["api"]:
            raise HttpError(404, "not found")
        if parts == ["api", "login"]:
            if method != "POST":
                raise HttpError(405, "log in with POST {\"username\": ..., \"password\": ...}")
            return self._login()
        if parts == ["api", "audit"] and method in ("GET", "HEAD"):
            user = self._user("auditor")
            return self._json(200, {"entries": self.app.audit.entries(user.clusters if user else frozenset())})
        if len(parts) >= 3 and parts[1] == "clusters":
            self._cluster = parts[2][:64]
        if parts == ["api", "clusters"] and method in ("GET", "HEAD"):
            user = self._user("cluster-show")
            return self._json(200, {"clusters": self.app.summary(user)})
        if len(parts) == 3 and parts[1] == "clusters" and method in ("GET", "HEAD"):
            user = self._user("cluster-show", parts[2])
            return self._json(200, self.app.monitor(parts[2], user).status())
        if parts == ["api", "openapi.json"] and method in ("GET", "HEAD"):
            return self._json(200, openapi_document())
        if len(parts) in (4, 5) and parts[1] == "clusters" and parts[3] == "events" and parts[4:] in ([], ["stream"]):
            return self._events(parts, query, method)
        if len(parts) == 4 and parts[1] == "clusters" and method == "POST":
            grant = OPERATION_GRANTS.get(parts[3], "cluster-show")
            user = self._user(grant, parts[2])
            monitor = self.app.monitor(parts[2], user)
            return self._operation(parts[3], monitor, user, query)
        if len(parts) == 6 and parts[1] == "clusters" and parts[3] == "servers" and parts[5] == "maintenance":
            if method != "POST":
                raise HttpError(405, "maintenance is set with POST {\"state\": \"on\"|\"off\"}")
            user = self._user("db-maintenance", parts[2])
            return self._maintenance(self.app.monitor(parts[2], user), parts[4], user, query)
        if len(parts) == 6 and parts[1] == "clusters" and parts[3] == "servers" and parts[5] == "reseed":
            if method != "POST":
                raise HttpError(405, "reseed is asked with POST (optional {\"from\": \"host:port\"})")
            user = self._user("db-reseed", parts[2])
            return self._reseed(self.app.monitor(parts[2], user), parts[4], user, query)
        if len(parts) in (3, 4) and parts[1] == "clusters":
            raise HttpError(405, f"{method} is not allowed here")
        raise HttpError(404, "not found")

    def _login(self) -> None:
        """POST /api/login {username, password} -> a short-lived bearer token."""
        body = self._body()
        name, password = body.get("username"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or not name:
            raise HttpError(400, "give username and password as strings")
        self._throttled(name[:128])
        user = self.app.auth.check(name, password)
        if user is None:
            self._failed_login(name[:128])
            self._who = f"{name[:64]} (failed)"
            raise HttpError(401, "wrong user name or password")
        self._who = user.name
        self._json(200, {"token": self.app.tokens.issue(user.name), "token_type": "Bearer",
                         "expires_in": int(self.app.tokens.ttl)})

    def _health(self, kind: str, rest: list[str], query: dict[str, str]) -> None:
        if not self.app.api.anonymous_health:
            self._user("cluster-show")
        cluster = query.get("cluster") or (rest[0] if len(rest) >= 2 else None)
        server_text = query.get("server") or (rest[-1] if rest else None)
        monitor = self.app.monitor(cluster)
        server = ServerAddress.parse(server_text, "server") if server_text else None
        lag = None
        if "lag" in query:
            try:
                lag = float(query["lag"])
            except ValueError:
                raise HttpError(400, f"lag must be a number of seconds, got {query['lag']!r}") from None
        status, body = self.app.health(kind, monitor, server, lag)
        self._json(status, body)

    def _maintenance(self, monitor: ClusterMonitor, server: str, user: ApiUser | None,
                     query: dict[str, str]) -> None:
        from repman.watcher.maintenance import set_maintenance
        body = self._body()
        state = body.get("state", query.get("state"))
        if state not in ("on", "off"):
            raise HttpError(400, f"state must be \"on\" or \"off\", got {state!r}")
        try:
            target, sentence = set_maintenance(monitor.cfg, monitor.store, server, state == "on", key="server")
        except ConfigError as exc:
            raise HttpError(404 if "is not a server" in str(exc) else 400, str(exc)) from None
        monitor.log(f"{sentence} (by {user.name if user else 'anonymous'} over the API)")
        self._json(200, {"ok": True, "server": target.url, "maintenance": state == "on", "sentence": sentence})

    def _operation(self, action: str, monitor: ClusterMonitor, user: ApiUser | None,
                   query: dict[str, str]) -> None:
        who = user.name if user else "anonymous"
        if action == "reset-failover-counter":
            monitor.store.reset_failover_counter()
            monitor.log(f"failover counter reset by {who}")
            return self._json(200, {"ok": True, "sentence": f"failover counter of {monitor.name} reset"})
        if action not in ("switchover", "failover", "rolling-restart"):
            raise HttpError(404, f"unknown operation {action!r}")
        body = self._body()
        to_text = body.get("to") or query.get("to")
        if action != "switchover" and to_text:
            raise HttpError(400, f"{action} chooses its servers; 'to' is only for switchover")
        to = ServerAddress.parse(to_text, "to") if to_text else None
        self._run(action, monitor, who, to=to)

    def _reseed(self, monitor: ClusterMonitor, server: str, user: ApiUser | None, query: dict[str, str]) -> None:
        """POST .../servers/<host:port>/reseed: rebuild a replica on the watcher's runner, as the CLI does."""
        body = self._body()
        source_text = body.get("from") or query.get("from")
        target = ServerAddress.parse(server, "server")
        source = ServerAddress.parse(source_text, "from") if source_text else None
        self._run("reseed", monitor, user.name if user else "anonymous", to=target, source=source)

    def _run(self, action: str, monitor: ClusterMonitor, who: str, to: ServerAddress | None = None,
             source: ServerAddress | None = None) -> None:
        """An operator's request on the cluster's runner, answered when it ends (or 202 while it runs)."""
        monitor.log(f"{action} requested by {who} over the API" + (f" (to {to})" if to else ""))
        result = monitor.operate(action, to=to, who=f"{who} over the API", timeout=self.app.operation_wait,
                                 source=source)
        if result is None:     # it goes on in the watcher: its end shows in the status' last_operation
            still = OperationResult(False, f"{action} still runs after {self.app.operation_wait:g}s: "
                                           f"see last_operation in GET /api/clusters/{monitor.name}", kind=action)
            return self._json(202, {**still.as_dict(), "running": True})
        self._json(200 if result.ok else 409, result.as_dict())

    # -- event history ---------------------------------------------------------------------
    def _events(self, parts: list[str], query: dict[str, str], method: str) -> None:
        """GET .../events (the history, filtered) and GET .../events/stream (server-sent events)."""
        from repman.watcher.events import KINDS, parse_limit, parse_since, select
        if method not in ("GET", "HEAD"):
            raise HttpError(405, "events are read with GET")
        user = self._user("cluster-show", parts[2])
        monitor = self.app.monitor(parts[2], user)
        after = parse_limit(query["after"], "after") if "after" in query else None
        if len(parts) == 5:
            return self._event_stream(monitor, after)
        kind = query.get("kind")
        if kind is not None and kind not in KINDS:
            raise HttpError(400, f"kind must be one of {', '.join(KINDS)}, got {kind[:32]!r}")
        since = parse_since(query["since"], "since") if "since" in query else None
        limit = parse_limit(query["limit"], "limit") if "limit" in query else EVENTS_LIMIT
        found = select(monitor.store.load().events, since=since, after=after, limit=limit,
                       kinds=[kind] if kind else ())
        self._json(200, {"cluster": monitor.name, "events": found})

    def _event_stream(self, monitor: ClusterMonitor, after: int | None) -> None:
        """New events as they are stored, for at most the stream lifetime; one thread per stream, bounded."""
        from repman.watcher.events import select
        if self.command == "HEAD":
            raise HttpError(405, "the event stream is read with GET")
        if not self.app.streams.acquire(blocking=False):
            raise HttpError(503, "too many event streams open: try again later", {"Retry-After": "5"})
        try:
            last_id = (self.headers.get("Last-Event-ID") or "").strip()
            if last_id.isdigit():
                after = int(last_id)
            if after is None:
                history = monitor.store.load().events
                after = int(history[-1].get("seq", 0)) if history else 0
            self._status = 200
            self.close_connection = True
            self.send_response(200)
            for k, v in (("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"),
                         ("Connection", "close"), ("X-Content-Type-Options", "nosniff")):
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(b"retry: 2000\n\n")
            self.wfile.flush()
            ends = time.monotonic() + self.app.stream_lifetime
            quiet_since = time.monotonic()
            while not self.app.stopping.is_set() and time.monotonic() < ends:
                for event in select(monitor.store.load().events, after=after):
                    after = int(event["seq"])
                    self.wfile.write(f"id: {after}\ndata: {json.dumps(event, sort_keys=True)}\n\n".encode())
                    quiet_since = time.monotonic()
                if time.monotonic() - quiet_since > 15:
                    self.wfile.write(b": keep-alive\n\n")    # proxies close silent connections
                    quiet_since = time.monotonic()
                self.wfile.flush()
                self.app.stopping.wait(STREAM_POLL)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            pass                                                  # the client left
        finally:
            self.app.streams.release()
