"""One cluster's validated watcher settings, read by key name as in repman."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repman.backup.keys import BACKUP_KEYS
from repman.db import Credential, ServerAddress
from repman.errors import ConfigError
from repman.key_access import TypedKeys
from repman.keys import Key
from repman.routing.keys import ROUTING_KEYS
from repman.watcher.keys import WATCHER_KEYS

#: every key a ``clusters.<name>`` section may hold, for the typed accessors
CLUSTER_KEYS: dict[str, Key] = {**WATCHER_KEYS, **ROUTING_KEYS, **BACKUP_KEYS}


@dataclass
class ClusterConfig(TypedKeys):
    """Validated values of one ``clusters.<name>`` section.

    Read keys through the typed accessors (``flag``, ``integer``, ``seconds``, ``text``...):
    they take the default from the key tables, so a config built from a partial mapping
    (tests, configs validated before a table was merged in) reads the same defaults.
    """

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    #: key -> PATH of a ``{file: PATH}`` credential: re-read when the file changes (password rotation)
    secret_files: dict[str, str] = field(default_factory=dict)
    _secret_mtimes: dict[str, int] = field(default_factory=dict, repr=False)

    def _refresh(self, key: str) -> None:
        """Keep the last good value when the file is missing or malformed (mid-rotation)."""
        path = self.secret_files.get(key)
        if not path:
            return
        try:
            mtime = os.stat(path).st_mtime_ns
            if self._secret_mtimes.get(key) == mtime:
                return
            self.values[key] = Credential.parse(Path(path).read_text().strip(), key)
        except (OSError, ConfigError):
            return
        self._secret_mtimes[key] = mtime

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Untyped read; prefer the typed accessors, which know the key's default."""
        return self.values.get(key, default)

    def key_definition(self, name: str) -> Key:
        if name not in CLUSTER_KEYS:
            raise KeyError(f"{name}: not a key of a clusters.<name> section")
        return CLUSTER_KEYS[name]

    def raw_value(self, name: str) -> Any:
        self._refresh(name)
        return self.values.get(name)

    @property
    def servers(self) -> list[ServerAddress]:
        return list(self.values["db-servers-hosts"])

    @property
    def admin(self) -> Credential:
        admin: Credential = self.values["db-servers-credential"]  # a required key, parsed by its table
        return admin

    @property
    def replication(self) -> Credential:
        self._refresh("replication-credential")
        replication: Credential = self.values["replication-credential"]  # required, parsed by its table
        return replication

    @property
    def ticker(self) -> float:
        return self.seconds("monitoring-ticker")

    @property
    def state_dir(self) -> Path:
        base = self.text("monitoring-datadir") or str(Path.home() / ".repman")
        return Path(base) / self.name
