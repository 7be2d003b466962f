"""MariaDB GTID positions (``domain-server-seq`` lists) and their comparison."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gtid:
    domain: int
    server_id: int
    seq: int

    def __str__(self) -> str:
        return f"{self.domain}-{self.server_id}-{self.seq}"


class GtidPosition:
    """A set of per-domain last GTIDs, as in ``@@gtid_binlog_pos``."""

    def __init__(self, gtids: dict[int, Gtid] | None = None) -> None:
        self.by_domain: dict[int, Gtid] = dict(gtids or {})

    @classmethod
    def parse(cls, text: str | None) -> GtidPosition:
        out: dict[int, Gtid] = {}
        for part in (text or "").replace("\n", "").split(","):
            part = part.strip()
            if not part:
                continue
            d, s, n = (int(x) for x in part.split("-"))
            out[d] = Gtid(d, s, n)
        return cls(out)

    def __str__(self) -> str:
        return ",".join(str(self.by_domain[d]) for d in sorted(self.by_domain))

    def __repr__(self) -> str:
        return f"GtidPosition({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GtidPosition):
            return NotImplemented
        return {d: g.seq for d, g in self.by_domain.items()} == {d: g.seq for d, g in other.by_domain.items()}

    def __bool__(self) -> bool:
        return bool(self.by_domain)

    def seq(self, domain: int) -> int:
        g = self.by_domain.get(domain)
        return g.seq if g else 0

    def total(self) -> int:
        """Sum of sequence numbers: a single number to rank positions of one cluster."""
        return sum(g.seq for g in self.by_domain.values())

    def contains(self, other: GtidPosition) -> bool:
        """True when every domain of ``other`` is at or behind this position."""
        return all(self.seq(d) >= g.seq for d, g in other.by_domain.items())

    def ahead_of(self, other: GtidPosition) -> list[str]:
        """Domains where this position is beyond ``other``: the transactions it alone holds."""
        return [str(g) for d, g in sorted(self.by_domain.items()) if g.seq > other.seq(d)]
