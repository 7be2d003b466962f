"""Dynamic provider of the local watcher: its YAML config, secret files and detached process.

create: write 0600 secret files and the YAML (validated by the watcher's own loader),
        start ``repman --config <file> watch`` detached (pid file).
diff:   any input change, a config file that differs, or a dead process is an update.
update: rewrite; restart when the config or a secret changed, start when it died.
delete: stop the process (SIGTERM); files stay for the post-mortem.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from components.providers.observed import KEY as OBSERVED, drift, integral, observed
from components.providers.scaffold import ResourceInputs, ScaffoldProvider, ScaffoldResource, read_live
from repman.local.watcher import WatcherFiles, running_pid, start_watcher, stop_watcher
from repman.watcher_yaml import dump, write_secret_files


def _files(props: dict[str, Any]) -> WatcherFiles:
    return WatcherFiles(Path(str(props["base_dir"])))


def _api(props: dict[str, Any]) -> tuple[str, int] | None:
    api = props.get("api") or {}
    if not api:
        return None
    host = str(api.get("api-bind") or "127.0.0.1")
    return ("127.0.0.1" if host in ("0.0.0.0", "::") else host), int(api.get("api-port") or 10005)


def _config_text(props: dict[str, Any]) -> str:
    """The YAML the watcher reads; numbers as ints again after the engine's float wire."""
    return dump(integral(props["config"]))


def _write(props: dict[str, Any]) -> bool:
    """Write secrets and config; True when anything the running watcher read changed."""
    from repman.api.config import api_config
    from repman.watcher.config import load_config

    files = _files(props)
    files.base.mkdir(parents=True, exist_ok=True)
    changed = write_secret_files(files.secrets_dir, dict(props.get("secrets") or {}))
    text = _config_text(props)
    if not files.config.exists() or files.config.read_text() != text:
        tmp = files.config.with_suffix(".tmp")
        tmp.write_text(text)
        wc = load_config(tmp)  # the watcher's own validation, before it replaces a working file
        api_config(wc)  # and the api: section's, as `repman watch` loads it
        from repman.backup.provision import ensure_repositories
        ensure_repositories(wc)  # restic init: the first scheduled backup finds its repository
        tmp.replace(files.config)
        changed = True
    return changed


def _outs(props: dict[str, Any], pid: int, instance: str, digest: str | None = None) -> dict[str, Any]:
    files = _files(props)
    api = _api(props)
    return {
        **LocalWatcherProvider.public_outputs(props, digest),
        "pid": pid,
        "config_path": str(files.config),
        "log_path": str(files.log),
        "api_url": f"http://{api[0]}:{api[1]}" if api else "",
        "instance": instance,
        OBSERVED: observed(bool(pid), _config_text(props)),
    }


class LocalWatcherProvider(ScaffoldProvider):
    secret_keys = ("secrets",)
    input_keys = ("base_dir", "cluster", "config", "api", "keep_state", "provider_version")
    output_keys = ("pid", "config_path", "log_path", "api_url", "instance", "secret_digest", "observed")

    def create(self, props: dict[str, Any]) -> CreateResult:
        files = _files(props)
        _write(props)
        stop_watcher(files)  # a watcher left by an earlier stack on the same files
        pid = start_watcher(files, _api(props))
        instance = f"watcher:{files.base}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=instance, outs=_outs(props, pid, instance))

    def drift(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        return drift(olds, _config_text(news))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        files = _files(news)
        if str(olds.get("base_dir")) != str(news["base_dir"]):
            stop_watcher(_files(olds))
        if _write(news) or olds.get("api") != news.get("api"):
            stop_watcher(files)
        pid = start_watcher(files, _api(news))
        return UpdateResult(outs=_outs(news, pid, str(olds.get("instance") or _id), self.kept_digest(olds, news)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The live watcher: its process and the config on disk (gone: neither)."""
        files = _files(props)
        return read_live(id_, props, running_pid(files), files.config)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Stop it and remove its secret files; its state (failover counter, crash records) goes
        with the datadirs: a later cluster on fresh datadirs must not inherit stale crash records."""
        files = _files(props)
        stop_watcher(files)
        shutil.rmtree(files.secrets_dir, ignore_errors=True)
        if not props.get("keep_state", True):
            shutil.rmtree(files.base, ignore_errors=True)


@dataclass(kw_only=True)
class LocalWatcherArgs(ResourceInputs):
    """The rendered config (no secrets in it) and the secrets it references (a secret Output)."""

    base_dir: str
    cluster: str
    config: pulumi.Input[dict]
    secrets: pulumi.Input[dict]
    api: dict = field(default_factory=dict)
    keep_state: bool = True

    def __post_init__(self) -> None:
        self.api = self.api or {}


class LocalWatcher(ScaffoldResource, module="repman", name="LocalWatcher"):
    """``repman watch`` for this cluster, detached on this host."""

    pid: pulumi.Output[int]
    config_path: pulumi.Output[str]
    log_path: pulumi.Output[str]
    api_url: pulumi.Output[str]

    provider_class = LocalWatcherProvider
