"""Shared pieces of the HA benchmarks: a real cluster, a recording writer, percentiles, verdicts.

The writer (tests/writer.py) records every acknowledged insert; at the end of a
run ``lost`` (acknowledged, missing) and ``unexpected`` (present, never sent)
are counted on the final primary, and every server is checked for errant GTIDs.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from repman.lab.writer import Writer  # noqa: E402
from repman.watcher.checks import read_states  # noqa: E402
from repman.watcher.election import errant_transactions  # noqa: E402
from testkit.cluster import HACluster, make_cluster  # noqa: E402

BENCH_TAGS = ("gtidstrict", "row", "readonly", "noquerycache", "smallredolog")


def new_cluster(semisync: bool, **settings: Any) -> HACluster:
    """A 3-node cluster in a fresh temporary folder (durable settings: no nodurable tag)."""
    base = Path(tempfile.mkdtemp(prefix="repman-habench-"))
    return make_cluster(base, semisync=semisync, tags=BENCH_TAGS, **settings)


def percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); with few samples p99 is the maximum."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = max(1, math.ceil(p / 100.0 * len(data)))
    return data[rank - 1]


def errant_count(cluster: HACluster) -> int:
    states = read_states(cluster.cfg)
    return sum(len(errant_transactions(s, list(states.values()))) for s in states.values() if s.reachable)


def write_config(cluster: HACluster, path: Path) -> Path:
    """The watcher YAML for the CLI: the cluster's settings under ``clusters.<name>``."""
    section: dict[str, Any] = {}
    for key, value in cluster.cfg.values.items():
        if value is None or value == "" or value == []:
            continue
        if key in ("db-servers-credential", "replication-credential"):
            value = f"{value.user}:{value.password}"
        elif key in ("db-servers-hosts", "db-servers-ignored-hosts"):
            value = [a.url for a in value]
        elif key == "db-servers-prefered-master":
            value = [a.url for a in value]
        section[key] = value
    path.write_text(yaml.safe_dump({"clusters": {cluster.cfg.name: section}}, sort_keys=True))
    return path


def verdict(cluster: HACluster, writer: Writer) -> tuple[int, int, int]:
    """(lost, unexpected, errant GTIDs) once the cluster converged."""
    primary = cluster.assert_converged()
    lost, unexpected = writer.verify(primary)
    return len(lost), len(unexpected), errant_count(cluster)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
