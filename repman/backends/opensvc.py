"""OpenSVC: service definitions from a template, driven through the cluster agent's API.

One OpenSVC service per database node (``<namespace>/svc/<cluster>-db<i>``) with a
data volume, a config volume fed from a cfg object (my.cnf, admin init script), the
admin credentials in a sec object, a pause container holding the network namespace,
the MariaDB container and a CNI ip. The agent's API (v2 listener, HTTP/2 over TLS,
basic auth) is called for create, provision, start, stop and purge.
"""

from __future__ import annotations

import configparser
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import jinja2

from repman.backends.container import admin_init_script, container_mycnf
from repman.db import Credential
from repman.errors import ConfigError, RepmanError
from repman.password_hash import native_password_hash
from repman.paths import templates_dir
from repman.plans import ServicePlan

if TYPE_CHECKING:
    import httpx

    from repman.spec import ClusterSpec

DB_PORT = 3306
SECTIONS = ("DEFAULT", "volume#1", "volume#2", "container#0", "container#1", "ip#1", "env")
_NO_DEFAULT = "__repman_no_default_section__"


class OpenSvcError(RepmanError):
    """The OpenSVC agent refused or failed a request."""


@dataclass(frozen=True)
class OpenSvcSettings:
    api_url: str
    credential: Credential
    namespace: str
    ca_file: str = ""
    network: str = "default"
    nodes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"OpenSvcSettings(api_url={self.api_url!r}, user={self.credential.user!r}, namespace={self.namespace!r})"


@dataclass(frozen=True)
class ServiceNames:
    namespace: str
    name: str

    @property
    def svc(self) -> str:
        return f"{self.namespace}/svc/{self.name}"

    @property
    def cfg(self) -> str:
        return f"{self.namespace}/cfg/{self.name}"

    @property
    def sec(self) -> str:
        return f"{self.namespace}/sec/{self.name}"


def settings_from_spec(spec: ClusterSpec) -> OpenSvcSettings:
    v = spec.values
    url = v["opensvc-api-url"]
    if not url:
        raise ConfigError("repman:opensvc-api-url", "is required for prov-orchestrator opensvc")
    if not url.startswith(("https://", "http://")):
        raise ConfigError("repman:opensvc-api-url", f"{url!r} must be an https:// URL (agent port 1215)")
    if v["opensvc-credential"] is None:
        raise ConfigError("repman:opensvc-credential", "is required (user:password; pulumi config set --secret)")
    namespace = v["opensvc-namespace"]
    if not namespace.replace("-", "").isalnum() or not namespace[:1].isalpha():
        raise ConfigError("repman:opensvc-namespace", f"{namespace!r}: letters, digits and '-' only")
    return OpenSvcSettings(api_url=url.rstrip("/"), credential=v["opensvc-credential"], namespace=namespace,
                           ca_file=v["opensvc-ca-file"], network=v["opensvc-network"],
                           nodes=tuple(v["opensvc-nodes"]))


def render_service(*, cluster: str, node_name: str, server_id: int, plan: ServicePlan, image: str,
                   network: str, nodes: tuple[str, ...] = (), pool: str = "") -> str:
    """The service definition text (INI) of one database node."""
    template = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
    ).get_template("opensvc/mariadb.conf.j2")
    return template.render(cluster=cluster, node_name=node_name, server_id=server_id, plan=plan, image=image,
                           network=network, nodes=" ".join(nodes) if nodes else "*", pool=pool, port=DB_PORT)


def parse_service(text: str) -> dict[str, dict[str, str]]:
    """INI text -> {section: {key: value}}, the ``data`` the agent's create handler takes.

    ``DEFAULT`` is kept as an ordinary section (configparser would merge it into all others).
    """
    parser = configparser.ConfigParser(default_section=_NO_DEFAULT, interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return {section: dict(parser[section]) for section in parser.sections()}


def node_config_keys(tags: tuple[str, ...] | list[str], plan: ServicePlan,
                     settings: dict[str, Any] | None = None) -> dict[str, str]:
    """cfg object keys installed into the config volume (``settings``: non-default prov-db-*)."""
    return {"repman.cnf": container_mycnf(list(tags), plan, settings), "admin-init.sh": admin_init_script()}


class OpenSvcClient:
    """The few agent API calls repman needs; every failure names the URL, call and path."""

    def __init__(self, settings: OpenSvcSettings, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        try:
            import httpx
        except ImportError:
            raise RepmanError("the opensvc backend needs httpx (pip install 'repman[opensvc]')") from None
        self.settings = settings
        verify: Any = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else True
        self._http = httpx.Client(
            base_url=settings.api_url, http2=True, verify=verify, timeout=timeout, transport=transport,
            auth=(settings.credential.user, settings.credential.password),
            headers={"o-node": "ANY", "Accept": "application/json"},
        )
        self._httpx = httpx

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenSvcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, what: str, body: dict[str, Any] | None = None,
              params: dict[str, str] | None = None) -> dict[str, Any]:
        where = f"opensvc API {self.settings.api_url}: {method} {path} ({what})"
        try:
            resp = self._http.request(method, path, json=body, params=params)
        except self._httpx.HTTPError as exc:
            raise OpenSvcError(f"{where}: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            raise OpenSvcError(f"{where}: HTTP {resp.status_code} {resp.text[:200]}".rstrip())
        try:
            data = resp.json()
        except ValueError:
            raise OpenSvcError(f"{where}: answer is not JSON") from None
        if isinstance(data, dict) and data.get("status", 0) not in (0, None):
            detail = data.get("error") or (data.get("data") or {}).get("err") or data
            raise OpenSvcError(f"{where}: status {data['status']}: {str(detail)[:200]}")
        return data if isinstance(data, dict) else {"data": data}

    # -- object lifecycle ------------------------------------------------------------------
    def create(self, path: str, config: dict[str, dict[str, str]]) -> dict[str, Any]:
        return self._call("POST", "/create", f"create {path}",
                          {"data": {path: config}, "provision": False, "sync": True})

    def set_key(self, path: str, key: str, data: str) -> None:
        self._call("POST", "/key", f"set key {key} of {path}", {"path": path, "key": key, "data": data})

    def expect(self, path: str, global_expect: str) -> dict[str, Any]:
        """Set the cluster-wide target state: provisioned, started, stopped, purged, deleted."""
        return self._call("POST", "/object_monitor", f"{global_expect} {path}",
                          {"path": path, "global_expect": global_expect})

    def status(self, path: str) -> dict[str, Any]:
        return self._call("GET", "/object_status", f"status of {path}", params={"path": path})

    def wait(self, path: str, done: Callable[[dict[str, Any]], bool], what: str, timeout: float = 600,
             interval: float = 2.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.status(path)
            if done(state):
                return state
            if time.monotonic() > deadline:
                agg = state.get("object") or {}
                raise OpenSvcError(f"opensvc API {self.settings.api_url}: {path} not {what} after "
                                   f"{timeout:.0f}s (avail {agg.get('avail')!r}, "
                                   f"provisioned {agg.get('provisioned')!r})")
            time.sleep(interval)


def service_address(status: dict[str, Any]) -> str:
    """The CNI address the agent reports for ip#1 on the node running the service."""
    for node in (status.get("nodes") or {}).values():
        resources = ((node.get("status") or {}).get("resources") or {})
        info = (resources.get("ip#1") or {}).get("info") or {}
        if info.get("ipaddr"):
            return str(info["ipaddr"])
    return ""


@dataclass
class ProvisionedService:
    path: str
    address: str


def provision_node(client: OpenSvcClient, names: ServiceNames, service_text: str, config_keys: dict[str, str],
                   admin: Credential, timeout: float = 600, interval: float = 2.0) -> ProvisionedService:
    """cfg and sec objects, the service, then provision and start it; returns its address."""
    client.create(names.cfg, {})
    for key, value in config_keys.items():
        client.set_key(names.cfg, key, value)
    client.create(names.sec, {})
    client.set_key(names.sec, "admin-user", admin.user)
    # the hash only: the container's environment never holds the clear admin password
    client.set_key(names.sec, "admin-password-hash", native_password_hash(admin.password))
    client.create(names.svc, parse_service(service_text))
    client.expect(names.svc, "provisioned")
    client.wait(names.svc, lambda s: (s.get("object") or {}).get("provisioned") is True, "provisioned",
                timeout, interval)
    client.expect(names.svc, "started")
    state = client.wait(names.svc, lambda s: (s.get("object") or {}).get("avail") == "up", "up",
                        timeout, interval)
    return ProvisionedService(path=names.svc, address=service_address(state))


def update_node(client: OpenSvcClient, names: ServiceNames, service_text: str,
                config_keys: dict[str, str]) -> None:
    """New definition and config keys; the agent applies them (a restart picks up my.cnf)."""
    for key, value in config_keys.items():
        client.set_key(names.cfg, key, value)
    client.create(names.svc, parse_service(service_text))


def purge_node(client: OpenSvcClient, names: ServiceNames, keep_data: bool, timeout: float = 600,
               interval: float = 2.0) -> None:
    """Stop; then purge (volumes removed) or delete (volumes kept) the service and its objects."""
    client.expect(names.svc, "stopped")
    client.wait(names.svc, lambda s: (s.get("object") or {}).get("avail") in ("down", None, "n/a"), "down",
                timeout, interval)
    client.expect(names.svc, "deleted" if keep_data else "purged")
    client.expect(names.cfg, "deleted")
    client.expect(names.sec, "deleted")

