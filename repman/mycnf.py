"""my.cnf rendering from tag fragments, like repman's configurator tags.

Each tag is one Jinja2 fragment in ``templates/mycnf/tags``; the base template
carries what every node needs for GTID replication. Unknown or conflicting
tags are configuration errors, found before any server is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Sequence

import jinja2

from repman.errors import ConfigError
from repman.paths import templates_dir
from repman.plans import ServicePlan
from repman.tags import (
    CLUSTER_CONTRADICTIONS,
    DB_EXCLUSIVE,
    DB_TAGS,
    MYCNF,
    OPTIMIZER_SWITCH,
    check_tags,
    optimizer_switch,
)

CONFLICTING_TAGS = tuple(pair for group in DB_EXCLUSIVE for pair in combinations(group, 2))


@dataclass(frozen=True)
class NodeContext:
    """Per-node facts the templates need (paths are absolute on the target host)."""

    server_id: int
    port: int
    datadir: str
    socket: str
    run_dir: str
    tmp_dir: str
    report_host: str = "127.0.0.1"
    bind_address: str = "127.0.0.1"
    ssl_dir: str = ""
    user: str = ""
    max_connections: int = 200
    semisync_timeout_ms: int = 4294967295   # no silent fallback (see tags/semisync)
    expire_logs_days: int = 5         # prov-db-expire-log-days (repman's default)
    gtid_domain_id: int = 0           # prov-db-domain
    extra: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def fragment_tags() -> list[str]:
    """Tags with a my.cnf fragment file."""
    tag_dir = templates_dir() / "mycnf" / "tags"
    return sorted(p.name.removesuffix(".cnf.j2") for p in tag_dir.glob("*.cnf.j2"))


def known_tags() -> list[str]:
    """Every database tag accepted: repman's configurator vocabulary (see ``repman.tags``)."""
    return sorted(DB_TAGS)


def validate_tags(tags: Sequence[str], key: str = "prov-db-tags") -> list[str]:
    """Return the tags de-duplicated in order, or raise naming the first bad one."""
    return check_tags(tags, DB_TAGS, CLUSTER_CONTRADICTIONS, DB_EXCLUSIVE, key)


def render_mycnf(tags: Sequence[str], plan: ServicePlan, node: NodeContext) -> str:
    """Render the complete my.cnf of one node."""
    clean = validate_tags(tags)
    if "ssl" in clean and not node.ssl_dir:
        raise ConfigError("prov-db-tags", "tag 'ssl' needs a certificate directory for the node")
    template = _environment().get_template("mycnf/base.cnf.j2")
    fragments = [t for t in clean if DB_TAGS[t].kind == MYCNF]
    return template.render(tags=clean, fragments=fragments, plan=plan, node=node,
                           optimizer_switch=optimizer_switch(clean),
                           switch_tags=[t for t in clean if t in OPTIMIZER_SWITCH])
