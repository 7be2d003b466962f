"""On-premise nodes over SSH: check the host, push my.cnf, initialise, start and supervise mariadbd.

No agent runs on the hosts. Each step has a name used in errors, and each step that
creates something registers its undo: when a later step fails, what this call
created is removed again (an existing datadir is never touched), so a failed node
leaves nothing half-provisioned for Pulumi to forget about.
"""

from __future__ import annotations

import shlex
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import jinja2

from repman.backends.ssh import HostSession, HostStepError, SshAuth
from repman.errors import ConfigError
from repman.mycnf import NodeContext, render_mycnf
from repman.password_hash import native_password_hash
from repman.paths import templates_dir
from repman.plans import get_plan

if TYPE_CHECKING:
    from repman.spec import ClusterSpec

SERVER_CANDIDATES = ("mariadbd", "/usr/sbin/mariadbd", "/usr/libexec/mariadbd", "/usr/local/bin/mariadbd")
# Package names per package manager (the server package brings install-db and the client).
PACKAGE_COMMANDS = {
    "apt-get": "DEBIAN_FRONTEND=noninteractive apt-get update -qq && "
               "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client",
    "dnf": "dnf install -y mariadb-server",
    "yum": "yum install -y mariadb-server",
    "zypper": "zypper --non-interactive install mariadb",
    "apk": "apk add --no-cache mariadb mariadb-client",
    "pacman": "pacman -S --noconfirm mariadb",
}
MEMORY_SLACK = 0.85  # the kernel reports less than the nominal RAM of a machine


@dataclass
class OnPremNodeSpec:
    """One database node on one host; compared field by field on update."""

    host: str
    node_name: str
    server_id: int
    port: int
    plan: str
    tags: list[str]
    base_dir: str
    admin_user: str
    admin_password: str = field(repr=False, default="")
    service_user: str = ""          # account mariadbd runs as; "" = mysql when it exists, else root
    install_packages: bool = False
    check_resources: bool = True
    start_timeout: float = 120.0
    #: non-default prov-db-* settings (``ClusterSpec.db_settings()``): max_connections, ...
    db_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def cnf(self) -> str:
        return f"{self.base_dir}/my.cnf"

    @property
    def datadir(self) -> str:
        return f"{self.base_dir}/data"

    @property
    def run_dir(self) -> str:
        return f"{self.base_dir}/run"

    @property
    def socket(self) -> str:
        return f"{self.run_dir}/mariadbd.sock"

    @property
    def unit(self) -> str:
        return f"repman-{self.node_name}.service"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OnPremNodeSpec:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class HostFacts:
    """What the checks found on the host; kept in the resource's state."""

    os_id: str
    kernel: str
    memory_mb: int
    cores: int
    systemd: bool
    server: str
    service_user: str
    package_manager: str = ""
    installed_packages: bool = False


@dataclass
class NodeState:
    """Outputs of a provisioned node (what delete and update need)."""

    host: str
    port: int
    base_dir: str
    supervision: str     # "systemd" or "supervisor"
    unit: str
    server: str
    service_user: str
    created_base: bool
    facts: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Undo:
    """Undo actions of the steps done so far, run in reverse on failure."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        self.actions.append((what, action))

    def run(self) -> list[str]:
        failed = []
        for what, action in reversed(self.actions):
            try:
                action()
            except Exception as exc:  # keep undoing the rest
                failed.append(f"{what} ({exc})")
        self.actions.clear()
        return failed


def _q(text: str) -> str:
    return shlex.quote(text)


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _template(name: str) -> str:
    return (templates_dir() / "onpremise" / name).read_text()


# -- checks --------------------------------------------------------------------------------
def check_host(session: HostSession, spec: OnPremNodeSpec) -> HostFacts:
    """OS, memory and cores against the plan, MariaDB binaries (installed when allowed)."""
    _, out, _ = session.run("check-os", "uname -s; uname -r; . /etc/os-release 2>/dev/null; echo \"${ID:-unknown}\"; "
                            "awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo; "
                            "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; "
                            "cat /proc/1/comm 2>/dev/null || echo unknown", privileged=False)
    lines = out.split("\n")
    if len(lines) < 6 or lines[0].strip() != "Linux":
        raise HostStepError(session.host, "check-os", f"not a Linux host (uname says {lines[0].strip()!r})")
    kernel, os_id = lines[1].strip(), lines[2].strip()
    try:
        memory_mb, cores = int(lines[3]), int(lines[4])
    except ValueError:
        raise HostStepError(session.host, "check-os", "cannot read memory or core count") from None
    systemd = lines[5].strip() == "systemd"
    plan = get_plan(spec.plan, registry=str(spec.db_settings.get("plan_registry", "")))
    if spec.check_resources:
        if cores < plan.cores:
            raise HostStepError(session.host, "check-resources",
                                f"{cores} cores but plan {plan.name} needs {plan.cores}")
        if memory_mb < plan.memory_mb * MEMORY_SLACK:
            raise HostStepError(session.host, "check-resources",
                                f"{memory_mb} MB of memory but plan {plan.name} needs {plan.memory_mb} MB")
        check_disk(session, spec)
    facts = HostFacts(os_id=os_id, kernel=kernel, memory_mb=memory_mb, cores=cores, systemd=systemd,
                      server="", service_user="")
    facts.server = _find_server(session)
    if not facts.server:
        if not spec.install_packages:
            raise HostStepError(session.host, "check-binaries",
                                "mariadbd not found (install MariaDB, or set onpremise-install-packages: true)")
        facts.package_manager = _package_manager(session)
        session.run("install-packages", PACKAGE_COMMANDS[facts.package_manager], timeout=1800)
        facts.installed_packages = True
        facts.server = _find_server(session)
        if not facts.server:
            raise HostStepError(session.host, "install-packages",
                                f"{facts.package_manager} finished but mariadbd is still missing")
    for tool in ("mariadb-install-db", "mariadb", "mariadb-admin"):
        code, _, _ = session.run("check-binaries", f"command -v {tool} || test -x /usr/bin/{tool}",
                                 privileged=False, check=False)
        if code != 0:
            raise HostStepError(session.host, "check-binaries", f"{tool} not found next to mariadbd")
    facts.service_user = spec.service_user or _default_service_user(session)
    code, _, _ = session.run("check-user", f"id -u {_q(facts.service_user)}", privileged=False, check=False)
    if code != 0:
        raise HostStepError(session.host, "check-user", f"account {facts.service_user!r} does not exist")
    return facts


def check_disk(session: HostSession, spec: OnPremNodeSpec) -> None:
    """The plan's data size must fit where the datadir lives: free space plus what the
    datadir already holds (a resize to a bigger plan is refused before anything changes)."""
    plan = get_plan(spec.plan)
    probe = (f"d={_q(spec.base_dir)}; while [ ! -d \"$d\" ]; do d=$(dirname \"$d\"); done; "
             "df -Pk \"$d\" | awk 'NR==2 {print $4}'; "
             f"du -sk {_q(spec.datadir)} 2>/dev/null | cut -f1 || true")
    _, out, _ = session.run("check-disk", probe, privileged=False)
    numbers = [int(x) for x in out.split() if x.isdigit()]
    if not numbers:
        raise HostStepError(session.host, "check-disk", f"cannot read the free space under {spec.base_dir}")
    usable_gb = (numbers[0] + (numbers[1] if len(numbers) > 1 else 0)) / 2**20
    if usable_gb < plan.data_size_gb:
        raise HostStepError(session.host, "check-disk",
                            f"{usable_gb:.0f} GB usable under {spec.base_dir} but plan {plan.name} "
                            f"(prov-service-plan) needs {plan.data_size_gb} GB of data")


def _find_server(session: HostSession) -> str:
    probe = "; ".join(
        f"if command -v {c} >/dev/null 2>&1; then command -v {c}; exit 0; fi" if "/" not in c
        else f"if [ -x {c} ]; then echo {c}; exit 0; fi"
        for c in SERVER_CANDIDATES
    )
    code, out, _ = session.run("check-binaries", probe + "; exit 1", privileged=False, check=False)
    return out.strip().splitlines()[0] if code == 0 and out.strip() else ""


def _package_manager(session: HostSession) -> str:
    for manager in PACKAGE_COMMANDS:
        code, _, _ = session.run("install-packages", f"command -v {manager}", privileged=False, check=False)
        if code == 0:
            return manager
    raise HostStepError(session.host, "install-packages",
                        f"no known package manager ({', '.join(PACKAGE_COMMANDS)})")


def _default_service_user(session: HostSession) -> str:
    code, _, _ = session.run("check-user", "id -u mysql", privileged=False, check=False)
    return "mysql" if code == 0 else "root"


# -- node lifecycle ------------------------------------------------------------------------
def render_node_config(spec: OnPremNodeSpec, facts: HostFacts) -> str:
    ctx = NodeContext(
        server_id=spec.server_id, port=spec.port, datadir=spec.datadir, socket=spec.socket,
        run_dir=spec.run_dir, tmp_dir=f"{spec.base_dir}/tmp", report_host=spec.host,
        bind_address=spec.host, ssl_dir=f"{spec.base_dir}/ssl",
        user="" if facts.systemd else facts.service_user,
        max_connections=int(spec.db_settings.get("max_connections", 200)),
        expire_logs_days=int(spec.db_settings.get("expire_logs_days", 5)),
        gtid_domain_id=int(spec.db_settings.get("gtid_domain_id", 0)),
    )
    plan = get_plan(spec.plan, registry=str(spec.db_settings.get("plan_registry", "")))
    return render_mycnf(spec.tags, plan, ctx)


def _push_certificates(session: HostSession, spec: OnPremNodeSpec, user: str) -> None:
    from repman.tls import ensure_server_certificates

    with tempfile.TemporaryDirectory() as tmp:
        ensure_server_certificates(Path(tmp), hosts=[spec.host])
        for name in ("ca.pem", "server-cert.pem", "server-key.pem"):
            mode = "0600" if name.endswith("key.pem") else "0644"
            session.write_file("push-certificates", f"{spec.base_dir}/ssl/{name}",
                               (Path(tmp) / name).read_text(), mode=mode)
    session.run("push-certificates", f"chown -R {_q(user)} {_q(spec.base_dir + '/ssl')}")


def _admin_sql(spec: OnPremNodeSpec) -> str:
    user, pw = _sql_string(spec.admin_user), _sql_string(native_password_hash(spec.admin_password))
    lines = ["SET SESSION sql_log_bin = 0;"]
    for host in ("'%'", "'localhost'"):
        lines += [
            f"CREATE USER IF NOT EXISTS {user}@{host} IDENTIFIED BY PASSWORD {pw};",
            f"ALTER USER {user}@{host} IDENTIFIED BY PASSWORD {pw};",
            f"GRANT ALL PRIVILEGES ON *.* TO {user}@{host} WITH GRANT OPTION;",
        ]
    return "\n".join(lines) + "\n"


def _start(session: HostSession, spec: OnPremNodeSpec, facts: HostFacts) -> str:
    if facts.systemd:
        unit = jinja2.Template(_template("mariadb.service.j2"), keep_trailing_newline=True).render(
            node=spec.node_name, user=facts.service_user, server=facts.server, cnf=spec.cnf)
        session.write_file("start", f"/etc/systemd/system/{spec.unit}", unit)
        session.run("start", f"systemctl daemon-reload && systemctl enable --now {_q(spec.unit)}")
        return "systemd"
    script = f"{spec.base_dir}/supervise.sh"
    session.write_file("start", script, _template("supervise.sh"), mode="0755")
    session.run("start", f": > {_q(spec.run_dir + '/supervisor.log')}")
    session.run("start", f"setsid -f sh {_q(script)} {_q(facts.server)} {_q(spec.cnf)} {_q(spec.run_dir)} "
                         "</dev/null >/dev/null 2>&1")
    return "supervisor"


def _wait_ready(session: HostSession, spec: OnPremNodeSpec) -> None:
    """Poll on the host (one SSH command) until the server answers on its socket.

    A server that exits during start-up (the supervisor logs a restart) fails at once
    with the last ``[ERROR]`` line of its log, rather than after the whole timeout.
    """
    rounds = int(spec.start_timeout * 5)
    script = (
        f"i=0; while [ $i -lt {rounds} ]; do "
        f"mariadb-admin --no-defaults --socket={_q(spec.socket)} -uroot --connect-timeout=2 ping "
        ">/dev/null 2>&1 && exit 0; "
        f"[ -s {_q(spec.run_dir + '/supervisor.log')} ] && break; i=$((i+1)); sleep 0.2; done; "
        f"e=$(grep '\\[ERROR\\]' {_q(spec.run_dir + '/error.log')} 2>/dev/null | grep -v Aborting | tail -n2 "
        "| sed 's/^.*\\[ERROR\\] //' | tr '\\n' ' '); "
        f"echo \"mariadbd did not start: ${{e:-no answer on its socket within {spec.start_timeout:g}s}}\" >&2; exit 1"
    )
    session.run("wait-ready", script, timeout=spec.start_timeout + 30)


def _reach_sql(host: str, port: int, timeout: float = 30.0) -> None:
    """The provisioner (and bootstrap) must reach the server over TCP, not only via SSH."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=3):
                return
        except OSError as exc:
            last = exc.strerror or str(exc)
            time.sleep(0.2)
    raise HostStepError(host, "reach-sql", f"port {port} not reachable from the provisioner: {last}")


def stop_service(session: HostSession, state: NodeState, step: str = "stop") -> None:
    """Clean shutdown; waits until no mariadbd of this node is left."""
    if state.supervision == "systemd":
        session.run(step, f"systemctl disable --now {_q(state.unit)} 2>/dev/null; "
                          f"rm -f /etc/systemd/system/{_q(state.unit)}; systemctl daemon-reload")
        return
    run_dir = f"{state.base_dir}/run"
    session.run(step, (
        f"p=$(cat {_q(run_dir + '/supervisor.pid')} 2>/dev/null); "
        f"[ -n \"$p\" ] && kill -TERM \"$p\" 2>/dev/null; "
        f"i=0; while [ $i -lt 600 ]; do "
        f"m=$(cat {_q(run_dir + '/mariadbd.pid')} 2>/dev/null); "
        f"{{ [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; }} || {{ [ -n \"$m\" ] && kill -0 \"$m\" 2>/dev/null; }} "
        f"|| exit 0; i=$((i+1)); sleep 0.2; done; exit 1"
    ), timeout=180)


def create_node(spec: OnPremNodeSpec, auth: SshAuth) -> NodeState:
    """Provision one node; on any failure undo what this call created and re-raise."""
    if not spec.admin_password:
        raise ConfigError("db-servers-credential", "the admin password is empty")
    undo = _Undo()
    with HostSession(spec.host, auth) as session:
        try:
            return _create(session, spec, undo)
        except HostStepError as exc:
            leftovers = undo.run()
            if leftovers:
                reason = str(exc).split(': ', 2)[2]
                raise HostStepError(exc.host, exc.step,
                                    f"{reason} (rollback incomplete: {'; '.join(leftovers)})") from None
            raise


def _create(session: HostSession, spec: OnPremNodeSpec, undo: _Undo) -> NodeState:
    facts = check_host(session, spec)
    code, _, _ = session.run("prepare-dirs", f"test -e {_q(spec.base_dir)}", check=False)
    created_base = code != 0
    code, _, _ = session.run("prepare-dirs", f"test -d {_q(spec.datadir + '/mysql')}", check=False)
    has_data = code == 0
    session.run("prepare-dirs", f"mkdir -p {_q(spec.base_dir)}")
    if created_base:
        undo.push(f"remove {spec.base_dir}", lambda: session.run("rollback", f"rm -rf {_q(spec.base_dir)}"))
    user = facts.service_user
    session.run("prepare-dirs", " && ".join([
        f"mkdir -p {' '.join(_q(spec.base_dir + d) for d in ('/data', '/run', '/tmp', '/ssl'))}",
        f"chown {_q(user)} {' '.join(_q(spec.base_dir + d) for d in ('/data', '/run', '/tmp', '/ssl'))}",
        f"chmod 0750 {_q(spec.datadir)}",
    ]))
    if "ssl" in spec.tags:
        _push_certificates(session, spec, user)
    session.write_file("push-config", spec.cnf, render_node_config(spec, facts))
    if not has_data:
        install = (f"mariadb-install-db --defaults-file={_q(spec.cnf)} --datadir={_q(spec.datadir)} "
                   f"--user={_q(user)} --skip-test-db --auth-root-authentication-method=socket")
        undo.push(f"remove {spec.datadir}",
                  lambda: session.run("rollback", f"rm -rf {_q(spec.datadir)} && mkdir -p {_q(spec.datadir)} "
                                                  f"&& chown {_q(user)} {_q(spec.datadir)}"))
        session.run("init-datadir", install, timeout=600)
    supervision = _start(session, spec, facts)
    state = NodeState(host=spec.host, port=spec.port, base_dir=spec.base_dir, supervision=supervision,
                      unit=spec.unit, server=facts.server, service_user=user, created_base=created_base,
                      facts=asdict(facts))
    undo.push("stop mariadbd", lambda: stop_service(session, state, step="rollback"))
    _wait_ready(session, spec)
    session.run("create-admin", f"mariadb --no-defaults --socket={_q(spec.socket)} -uroot",
                stdin=_admin_sql(spec))
    _reach_sql(spec.host, spec.port)
    return state


def delete_node(state: NodeState, auth: SshAuth, keep_data: bool = True) -> None:
    """Stop the server and its supervision; remove the node's directory unless data is kept."""
    with HostSession(state.host, auth) as session:
        stop_service(session, state)
        if not keep_data:
            session.run("remove-data", f"rm -rf {_q(state.base_dir)}")


def _live_statements(current: str, text: str) -> str | None:
    """``SET GLOBAL`` statements for a my.cnf change that needs no restart, else None."""
    from repman.local.node import dynamic_statements

    return dynamic_statements(current, text)


def update_node(old: OnPremNodeSpec, new: OnPremNodeSpec, state: NodeState, auth: SshAuth) -> str:
    """Push a changed my.cnf; apply it live (``prov-db-apply-dynamic-config``, every changed
    variable dynamic) or restart cleanly. Returns unchanged/live/restarted."""
    facts = HostFacts(**state.facts)
    text = render_node_config(new, facts)
    with HostSession(new.host, auth) as session:
        if new.check_resources and new.plan != old.plan:
            check_disk(session, new)
        current = session.read_file("push-config", new.cnf)
        running = node_running(session, state)
        if current == text and running and old.admin_password == new.admin_password:
            return "unchanged"
        if "ssl" in new.tags:
            _push_certificates(session, new, state.service_user)
        session.write_file("push-config", new.cnf, text)
        live = None
        if current and current != text and running and new.db_settings.get("apply_dynamic_config", True):
            live = _live_statements(current, text)
        if live:
            code, _, _ = session.run("apply-live", f"mariadb --no-defaults --socket={_q(new.socket)} -uroot",
                                     stdin=live, check=False)
            if code == 0:
                session.run("create-admin", f"mariadb --no-defaults --socket={_q(new.socket)} -uroot",
                            stdin=_admin_sql(new))
                _reach_sql(new.host, new.port)
                return "live"
        if current != text or not running:
            stop_service(session, state)
            _start(session, new, facts)
            _wait_ready(session, new)
        session.run("create-admin", f"mariadb --no-defaults --socket={_q(new.socket)} -uroot",
                    stdin=_admin_sql(new))
    _reach_sql(new.host, new.port)
    return "restarted" if current != text or not running else "unchanged"


def node_running(session: HostSession, state: NodeState) -> bool:
    code, _, _ = session.run(
        "status", f"m=$(cat {_q(state.base_dir + '/run/mariadbd.pid')} 2>/dev/null); "
                  "[ -n \"$m\" ] && kill -0 \"$m\"", check=False)
    return code == 0


def server_pid(session: HostSession, state: NodeState) -> int | None:
    out = session.read_file("status", f"{state.base_dir}/run/mariadbd.pid")
    return int(out.strip()) if out and out.strip().isdigit() else None


# -- stack config -> nodes -----------------------------------------------------------------
def ssh_auth_from_spec(spec: ClusterSpec) -> SshAuth:
    """Login settings from the ``onpremise-*`` keys (secrets already resolved by the spec)."""
    v = spec.values
    key, password = v["onpremise-ssh-key"], v["onpremise-ssh-password"]
    if not key and not password:
        raise ConfigError("repman:onpremise-ssh-key",
                          "set a private key (or repman:onpremise-ssh-password) with `pulumi config set --secret`")
    known = v["onpremise-known-hosts"]
    if v["onpremise-ssh-strict-host-key-checking"] and not known:
        raise ConfigError("repman:onpremise-known-hosts", "is required while host key checking is on")
    return SshAuth(user=v["onpremise-ssh-user"], private_key=key, password=password, known_hosts=known,
                   strict_host_key_checking=v["onpremise-ssh-strict-host-key-checking"],
                   port=v["onpremise-ssh-port"], connect_timeout=float(v["onpremise-ssh-timeout"]))


def node_specs_from_spec(spec: ClusterSpec) -> list[OnPremNodeSpec]:
    """One ``OnPremNodeSpec`` per plan node, host i from ``onpremise-hosts``."""
    v = spec.values
    hosts = [h.strip() for h in v["onpremise-hosts"]]
    if len(hosts) != spec.node_count:
        raise ConfigError("repman:onpremise-hosts",
                          f"{len(hosts)} hosts listed but the cluster has {spec.node_count} nodes")
    if len(set(hosts)) != len(hosts) and "{node}" not in v["onpremise-base-dir"]:
        raise ConfigError("repman:onpremise-base-dir", "hosts repeat: the directory must contain {node}")
    template = v["onpremise-base-dir"]
    if not template.startswith("/"):
        raise ConfigError("repman:onpremise-base-dir", f"{template!r} must be an absolute path on the hosts")
    out = []
    for node, host in zip(spec.nodes, hosts):
        try:
            base = template.format(cluster=spec.name, node=node.name)
        except (KeyError, IndexError, ValueError):
            raise ConfigError("repman:onpremise-base-dir",
                              f"{template!r}: only {{cluster}} and {{node}} may be used") from None
        out.append(OnPremNodeSpec(
            host=host, node_name=node.name, server_id=node.server_id, port=node.port,
            plan=spec.plan.name, tags=list(spec.db_tags), base_dir=base.rstrip("/"),
            admin_user=spec.admin.user, admin_password=spec.admin.password,
            service_user=v["onpremise-db-user"], install_packages=v["onpremise-install-packages"],
            check_resources=v["onpremise-check-resources"], db_settings=spec.db_settings(),
        ))
    return out
