"""Seeding an on-premise (SSH) node: the physical copy streamed host to host through SSH.

Why: on SSH hosts the source's datadir and the target's are on different machines.
``mariadb-backup --backup --stream=xbstream`` runs on the source host, ``mbstream
-x`` on the target host, and the deployer relays the stream between the two SSH
channels (counting bytes for progress); ``--prepare``, the datadir swap and the
restart under the node's supervision run on the target host; the GTID and
replication steps are the local seeding's (repman/seeding.py). Every failure
names the node and the step and leaves the target's datadir as it was.
"""

from __future__ import annotations

import select
import shlex
import time
from collections import deque

import paramiko

from repman.backends.onpremise import HostFacts, NodeState, OnPremNodeSpec, _start, _wait_ready, stop_service
from repman.backends.ssh import HostSession, HostStepError, SshAuth
from repman.db import ServerAddress
from repman.errors import RepmanError
from repman.seeding import CHUNK, SeedError, SeedRequest, SeedResult, attach, catch_up, settle

_q = shlex.quote


def _options(session: HostSession, spec: OnPremNodeSpec, req: SeedRequest) -> str:
    """The source's my.cnf plus the admin login, 0600 on the source host (never in argv/env)."""
    cnf = session.read_file("stream", spec.cnf) or ""
    path = f"{spec.base_dir}/tmp/seed-options.cnf"
    session.run("stream", f"mkdir -p {_q(spec.base_dir + '/tmp')}")
    session.write_file("stream", path, cnf + f"\n[client]\nuser={req.admin.user}\npassword={req.admin.password}\n",
                       mode="0600")
    return path


def _channel(session: HostSession, command: str) -> paramiko.Channel:
    session.open()
    conn = session._conn  # noqa: SLF001 - the stream needs a raw channel
    if conn is None:
        raise HostStepError(session.host, "stream", "SSH connection is not open")
    transport = conn.client.get_transport()
    if transport is None or not transport.is_active():
        raise HostStepError(session.host, "stream", "SSH transport is closed")
    chan = transport.open_session(timeout=30)
    chan.exec_command(session.sudo_prefix + "sh -c " + _q(command))
    return chan


def relay(source: paramiko.Channel, target: paramiko.Channel, progress, timeout: float = 30.0
          ) -> tuple[int, deque, deque]:
    """Copy the source channel's stdout into the target channel's stdin until EOF.
    Returns bytes copied and the last stderr lines of both sides."""
    src_err: deque = deque(maxlen=20)
    dst_err: deque = deque(maxlen=20)
    copied, started, last, idle_since = 0, time.monotonic(), time.monotonic(), time.monotonic()
    while True:
        select.select([source, target], [], [], 1.0)
        moved = False
        while source.recv_ready():
            data = source.recv(CHUNK)
            target.sendall(data)
            copied += len(data)
            moved = True
        for chan, lines in ((source, src_err), (target, dst_err)):
            while chan.recv_stderr_ready():
                lines.extend(chan.recv_stderr(65536).decode(errors="replace").splitlines())
        while target.recv_ready():
            target.recv(65536)
        if source.exit_status_ready() and not source.recv_ready() and not source.recv_stderr_ready():
            break
        if target.exit_status_ready():  # the extractor died: stop reading
            break
        now = time.monotonic()
        idle_since = now if moved else idle_since
        if now - idle_since > timeout and not moved and source.closed:
            break
        if now - last >= 2.0:
            progress(f"  {copied / 2**20:.0f} MiB copied ({copied / 2**20 / (now - started):.0f} MiB/s)")
            last = now
    target.shutdown_write()
    elapsed = max(time.monotonic() - started, 1e-6)
    progress(f"  {copied / 2**20:.0f} MiB copied in {elapsed:.1f}s ({copied / 2**20 / elapsed:.0f} MiB/s)")
    return copied, src_err, dst_err


def _telling(lines: deque) -> str:
    words = ("error", "fatal", "was only able", "failed")
    picked = [l for l in lines if any(w in l.lower() for w in words)] or list(lines) or ["no output"]
    return picked[-1][-300:]


def seed_ssh_node(req: SeedRequest, target: OnPremNodeSpec, target_state: NodeState, source: OnPremNodeSpec,
                  auth: SshAuth) -> SeedResult:
    """Replace ``target``'s data with a physical copy of ``source`` over SSH, then replicate."""
    seconds: dict[str, float] = {}
    step, started = "source", time.monotonic()
    seed_dir = f"{target.base_dir}/seed"
    source_addr = ServerAddress(source.host, source.port)
    try:
        if source_addr != req.primary:
            settle(source_addr, req.primary, req.admin, req.wait_timeout)
        with HostSession(source.host, auth) as src, HostSession(target.host, auth) as dst:
            step = "stream"
            req.progress(f"seeding {req.target.url} from {source_addr.url} over SSH: streaming a physical backup")
            options = _options(src, source, req)
            dst.run(step, f"rm -rf {_q(seed_dir)} && mkdir -p {_q(seed_dir + '/data')}")
            backup = _channel(src, f"mariadb-backup --defaults-file={_q(options)} --backup --stream=xbstream "
                                   f"--socket={_q(source.socket)} --target-dir={_q(source.base_dir + '/tmp')} "
                                   f"--parallel=2; c=$?; rm -f {_q(options)}; exit $c")
            extract = _channel(dst, f"mbstream -x -C {_q(seed_dir + '/data')}")
            try:
                copied, src_err, dst_err = relay(backup, extract, req.progress)
                code_src, code_dst = backup.recv_exit_status(), extract.recv_exit_status()
            finally:
                backup.close()
                extract.close()
                src.run(step, f"rm -f {_q(options)}", check=False)
            if code_src != 0:
                raise RuntimeError(f"mariadb-backup on {source.host} exited with {code_src}: {_telling(src_err)}")
            if code_dst != 0:
                raise RuntimeError(f"mbstream on {target.host} exited with {code_dst}: {_telling(dst_err)}")
            seconds["stream"] = time.monotonic() - started
            step, started = "prepare", time.monotonic()
            dst.run(step, f"mariadb-backup --prepare --target-dir={_q(seed_dir + '/data')} --use-memory=256M "
                          f"> {_q(seed_dir + '/prepare.log')} 2>&1 || {{ tail -n 3 {_q(seed_dir + '/prepare.log')}"
                          " >&2; exit 1; }", timeout=3600)
            info = (dst.read_file(step, f"{seed_dir}/data/mariadb_backup_binlog_info")
                    or dst.read_file(step, f"{seed_dir}/data/xtrabackup_binlog_info") or "")
            fields = info.split()
            if len(fields) < 3:
                raise RuntimeError("the backup records no binlog position (mariadb_backup_binlog_info)")
            gtid = fields[2]
            seconds["prepare"] = time.monotonic() - started
            step, started = "install", time.monotonic()
            req.progress(f"seeding {req.target.url}: installing the copy (gtid {gtid})")
            _install(dst, target, target_state, seed_dir)
            seconds["install"] = time.monotonic() - started
        step, started = "attach", time.monotonic()
        attach(req, gtid)
        step = "catch-up"
        catch_up(req)
        seconds["catch-up"] = time.monotonic() - started
    except SeedError:
        raise
    except (RepmanError, RuntimeError, OSError, paramiko.SSHException) as exc:
        raise SeedError(req.target, step, str(exc) or type(exc).__name__) from exc
    req.progress(f"seeded {req.target.url} from {source_addr.url} at {gtid}: replicating")
    return SeedResult(target=req.target, source=source_addr, gtid=gtid, bytes_copied=copied, seconds=seconds)


def _install(session: HostSession, spec: OnPremNodeSpec, state: NodeState, seed_dir: str) -> None:
    """Swap datadirs under the node's supervision; a failed start puts the old one back."""
    facts = HostFacts(**state.facts)
    data, old = spec.datadir, f"{spec.base_dir}/data.replaced"
    stop_service(session, state, step="install")
    session.run("install", f"rm -rf {_q(old)}; mv {_q(data)} {_q(old)} && mv {_q(seed_dir + '/data')} {_q(data)} "
                           f"&& chown -R {_q(state.service_user)}: {_q(data)} && rm -rf {_q(seed_dir)}")
    try:
        _start(session, spec, facts)
        _wait_ready(session, spec)
    except RepmanError:
        stop_service(session, state, step="install")
        session.run("install", f"rm -rf {_q(data)} && mv {_q(old)} {_q(data)}", check=False)
        _start(session, spec, facts)
        raise
    session.run("install", f"rm -rf {_q(old)}")
