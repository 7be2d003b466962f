"""my.cnf rendering from tag fragments, like repman's configurator tags.

Each tag is one Jinja2 fragment in ``templates/mycnf/tags``; the base template
carries what every node needs for GTID replication. Unknown or conflicting
tags are configuration errors, found before any server is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import jinja2

from repman.errors import ConfigError
from repman.paths import templates_dir
from repman.plans import ServicePlan

CONFLICTING_TAGS = (("durable", "nodurable"),)


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


def known_tags() -> list[str]:
    tag_dir = templates_dir() / "mycnf" / "tags"
    return sorted(p.name.removesuffix(".cnf.j2") for p in tag_dir.glob("*.cnf.j2"))


def validate_tags(tags: Sequence[str], key: str = "prov-db-tags") -> list[str]:
    """Return the tags de-duplicated in order, or raise naming the first bad one."""
    known = set(known_tags())
    seen: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or tag not in known:
            raise ConfigError(key, f"unknown tag {tag!r} (known: {', '.join(sorted(known))})")
        if tag not in seen:
            seen.append(tag)
    for a, b in CONFLICTING_TAGS:
        if a in seen and b in seen:
            raise ConfigError(key, f"tags {a!r} and {b!r} contradict each other")
    return seen


def render_mycnf(tags: Sequence[str], plan: ServicePlan, node: NodeContext) -> str:
    """Render the complete my.cnf of one node."""
    clean = validate_tags(tags)
    if "ssl" in clean and not node.ssl_dir:
        raise ConfigError("prov-db-tags", "tag 'ssl' needs a certificate directory for the node")
    template = _environment().get_template("mycnf/base.cnf.j2")
    return template.render(tags=clean, plan=plan, node=node)
