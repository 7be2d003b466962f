"""Service plans: node count and resource tier of a cluster in one name.

Plans are rows in ``service_plans/*.yaml``. Like repman's ``prov-service-plan``
names, the digit after ``x`` is the number of database nodes; the loader checks it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from repman.errors import ConfigError
from repman.paths import service_plans_dir

_NAME_RE = re.compile(r"^x(\d+)\.[a-z0-9.]+$")
_INT_FIELDS = (
    "db-nodes", "memory-mb", "cores", "data-size-gb", "system-size-gb",
    "iops", "proxy-cores", "proxy-data-size-gb",
)


@dataclass(frozen=True)
class ServicePlan:
    name: str
    db_nodes: int
    memory_mb: int
    cores: int
    data_size_gb: int
    system_size_gb: int
    iops: int
    proxy_cores: int
    proxy_data_size_gb: int

    def as_dict(self) -> dict[str, Any]:
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}


def _parse_plan(row: Any, where: str) -> ServicePlan:
    if not isinstance(row, dict):
        raise ConfigError(where, f"a plan must be a mapping, got {row!r}")
    name = row.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}.name", f"plan name {name!r} must look like x<nodes>.<tier>")
    unknown = set(row) - {"name", *_INT_FIELDS}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown plan field")
    values: dict[str, int] = {}
    for field in _INT_FIELDS:
        value = row.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name}.{field}", f"must be a non-negative integer, got {value!r}")
        values[field.replace("-", "_")] = value
    if values["db_nodes"] < 1:
        raise ConfigError(f"{name}.db-nodes", f"node count must be at least 1, got {values['db_nodes']}")
    digit = int(_NAME_RE.match(name).group(1))  # type: ignore[union-attr]
    if digit != values["db_nodes"]:
        raise ConfigError(f"{name}.db-nodes", f"is {values['db_nodes']} but the plan name says {digit}")
    return ServicePlan(name=name, **values)


def load_plans(directory: Path | None = None) -> dict[str, ServicePlan]:
    """Load and validate every plan file; duplicate names are an error."""
    directory = directory or service_plans_dir()
    plans: dict[str, ServicePlan] = {}
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        rows = doc.get("plans") if isinstance(doc, dict) else None
        if not isinstance(rows, list):
            raise ConfigError(f"{path.name}:plans", "must be a list of plans")
        for index, row in enumerate(rows):
            plan = _parse_plan(row, f"{path.name}:plans[{index}]")
            if plan.name in plans:
                raise ConfigError(f"{path.name}:{plan.name}", "duplicate plan name")
            plans[plan.name] = plan
    return plans


#: repman's registry columns (``prov-service-plan-registry``); dbcpufreq and id are not used here
REGISTRY_COLUMNS = ("plan", "dbmemory", "dbcores", "dbdatasize", "dbsystemsize", "dbiops", "prxcores",
                    "prxdatasize")
REGISTRY_KEY = "prov-service-plan-registry"


def _registry_text(source: str) -> str:
    if source.startswith(("http://", "https://")):
        import urllib.request

        try:
            with urllib.request.urlopen(source, timeout=10) as answer:   # noqa: S310 (http(s) only)
                return answer.read().decode("utf-8")
        except OSError as exc:
            raise ConfigError(REGISTRY_KEY, f"cannot read {source}: {exc}") from None
    try:
        return Path(source).expanduser().read_text()
    except OSError as exc:
        raise ConfigError(REGISTRY_KEY, f"cannot read {source}: {exc.strerror}") from None


def load_registry(source: str) -> dict[str, ServicePlan]:
    """Plans from a CSV in repman's registry format (a file or an http(s) URL)."""
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(_registry_text(source))))
    missing = [c for c in REGISTRY_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise ConfigError(REGISTRY_KEY, f"{source}: expected a CSV header with {', '.join(REGISTRY_COLUMNS)}"
                          + (f" (missing {', '.join(missing)})" if missing else ""))
    plans: dict[str, ServicePlan] = {}
    for number, row in enumerate(rows, start=2):
        name = (row.get("plan") or "").strip()
        match = _NAME_RE.match(name)
        if not match:
            raise ConfigError(REGISTRY_KEY,
                              f"{source} line {number}: plan name {name!r} must look like x<nodes>.<tier>")
        try:
            nums = {c: int(str(row[c]).strip() or 0) for c in REGISTRY_COLUMNS[1:]}
        except ValueError:
            raise ConfigError(REGISTRY_KEY, f"{source} line {number}: plan {name}: numbers expected") from None
        plans[name] = ServicePlan(
            name=name, db_nodes=int(match.group(1)), memory_mb=nums["dbmemory"], cores=nums["dbcores"],
            data_size_gb=nums["dbdatasize"], system_size_gb=nums["dbsystemsize"], iops=nums["dbiops"],
            proxy_cores=nums["prxcores"], proxy_data_size_gb=nums["prxdatasize"])
        if plans[name].db_nodes < 1:
            raise ConfigError(REGISTRY_KEY, f"{source} line {number}: plan {name} has no database node")
    return plans


def get_plan(name: str, key: str = "prov-service-plan", registry: str = "") -> ServicePlan:
    """A plan by name, from ``service_plans/`` or from repman's registry CSV when one is given."""
    plans = load_registry(registry) if registry else load_plans()
    if name not in plans:
        raise ConfigError(key, f"unknown service plan {name!r} (known: {', '.join(sorted(plans))})")
    return plans[name]
