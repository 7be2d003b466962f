"""One cluster's validated watcher settings, read by key name as in repman."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repman.db import Credential, ServerAddress


@dataclass
class ClusterConfig:
    """Validated values of one ``clusters.<name>`` section (every known key present)."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def servers(self) -> list[ServerAddress]:
        return list(self.values["db-servers-hosts"])

    @property
    def admin(self) -> Credential:
        return self.values["db-servers-credential"]

    @property
    def replication(self) -> Credential:
        return self.values["replication-credential"]

    @property
    def ticker(self) -> float:
        return float(self.values["monitoring-ticker"])

    @property
    def state_dir(self) -> Path:
        base = self.values.get("monitoring-datadir") or str(Path.home() / ".repman")
        return Path(base) / self.name
