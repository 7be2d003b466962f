"""External hook scripts with replication-manager's arguments.

Only the pre-script can stop an operation (it runs before anything changed); every
other script is informational: its failure is logged, never raised, so a broken hook
cannot leave a cluster half switched.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from repman.db import ServerAddress
from repman.errors import OperationRefused
from repman.key_access import TypedKeys
from repman.routing.logsink import Log, emit
from repman.routing.names import server_name


@dataclass(frozen=True)
class ScriptResult:
    key: str
    argv: tuple[str, ...]
    returncode: int | None          # None: not run (unset) or killed at timeout
    output: str = ""
    timed_out: bool = False
    error: str = ""                 # could not start it at all

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def last_line(self) -> str:
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def describe(self) -> str:
        if self.error:
            return f"{self.key} could not run: {self.error}"
        if self.timed_out:
            return f"{self.key} timed out"
        tail = f": {self.last_line}" if self.last_line else ""
        return f"{self.key} exited {self.returncode}{tail}"


def _timeout(cfg: TypedKeys) -> float:
    return cfg.seconds("failover-script-timeout")


def run_script(
    key: str, path: str, args: Sequence[str], timeout: float, log: Log = None,
    env: Mapping[str, str] | None = None,
) -> ScriptResult:
    """Run one script with a time bound; stdout and stderr are kept together for the log."""
    argv = (path, *[str(a) for a in args])
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=full_env, start_new_session=True, text=True, errors="replace",
        )
    except OSError as exc:
        result = ScriptResult(key, argv, None, error=exc.strerror or str(exc))
        emit(log, result.describe(), logging.ERROR)
        return result
    try:
        output, _ = proc.communicate(timeout=timeout)
        result = ScriptResult(key, argv, proc.returncode, output or "")
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass
        try:
            output, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:   # a descendant left the group and holds the pipe
            proc.kill()
            output = ""
        result = ScriptResult(key, argv, None, output or "", timed_out=True)
    level = logging.INFO if result.ok else logging.ERROR
    emit(log, result.describe() if not result.ok else f"{key} ran: {' '.join(argv)}", level)
    return result


def _hp(addr: ServerAddress | None) -> tuple[str, str, str]:
    if addr is None:
        return "", "", ""
    return addr.host, str(addr.port), server_name(addr)


def failover_args(old: ServerAddress | None, new: ServerAddress | None, kind: str) -> list[str]:
    """``oldHost newHost oldPort newPort oldProxyName newProxyName failover|switchover``."""
    oh, op, on = _hp(old)
    nh, np, nn = _hp(new)
    return [oh, nh, op, np, on, nn, kind]


def _env(cfg: Any, kind: str) -> dict[str, str]:
    return {"REPMAN_CLUSTER": str(getattr(cfg, "name", "")), "REPMAN_OPERATION": kind}


def run_pre_script(cfg: Any, old: ServerAddress | None, new: ServerAddress | None, kind: str,
                   log: Log = None) -> ScriptResult | None:
    """Run ``failover-pre-script``; a failure refuses the operation before anything changed."""
    path = cfg.text("failover-pre-script")
    if not path:
        return None
    result = run_script("failover-pre-script", path, failover_args(old, new, kind), _timeout(cfg), log,
                        _env(cfg, kind))
    if not result.ok:
        raise OperationRefused(f"{kind} refused by {result.describe()}")
    return result


def run_post_script(cfg: Any, old: ServerAddress | None, new: ServerAddress | None, kind: str,
                    log: Log = None) -> ScriptResult | None:
    """Run ``failover-post-script`` after the change; its failure is only reported."""
    path = cfg.text("failover-post-script")
    if not path:
        return None
    return run_script("failover-post-script", path, failover_args(old, new, kind), _timeout(cfg), log,
                      _env(cfg, kind))


def run_vip_script(cfg: Any, old: ServerAddress | None, new: ServerAddress | None, reason: str,
                   log: Log = None) -> ScriptResult | None:
    """Run ``failover-vip-script``: ``cluster oldHost newHost oldPort newPort reason``."""
    path = cfg.text("failover-vip-script")
    if not path:
        return None
    oh, op, _ = _hp(old)
    nh, np, _ = _hp(new)
    args = [str(getattr(cfg, "name", "")), oh, nh, op, np, reason]
    return run_script("failover-vip-script", path, args, _timeout(cfg), log, _env(cfg, reason))


def run_state_change_script(cfg: Any, server: ServerAddress, new_state: str, old_state: str,
                            log: Log = None) -> ScriptResult | None:
    """Run ``db-servers-state-change-script``: ``cluster host port newState oldState``."""
    path = cfg.text("db-servers-state-change-script")
    if not path:
        return None
    args = [str(getattr(cfg, "name", "")), server.host, str(server.port), new_state, old_state]
    return run_script("db-servers-state-change-script", path, args, _timeout(cfg), log,
                      _env(cfg, "state-change"))


def run_alert_script(cfg: Any, message: str, log: Log = None, *, host: str = "", prev_state: str = "",
                     state: str = "Alert") -> ScriptResult | None:
    """Run ``alert-script`` with repman's arguments ``cluster host previousState state``, then
    our sentence as a fifth argument (repman scripts read $1..$4 and are not disturbed)."""
    path = cfg.text("alert-script")
    if not path:
        return None
    args = [str(getattr(cfg, "name", "")), host, prev_state, state, message]
    return run_script("alert-script", path, args, _timeout(cfg), log, _env(cfg, "alert"))
