"""Backup/PITR checks shared by the backup tests: durable server tags, archive catch-up, exact restore."""

from __future__ import annotations

from repman.backup.binlogs import BinlogArchive
from repman.db import ServerAddress
from repman.gtid import GtidPosition
from repman.lab.writer import TABLE, Writer
from testkit.cluster import HACluster
from testkit.polling import wait_until

DURABLE_TAGS = ("gtidstrict", "row", "readonly", "noquerycache", "smallredolog")


def wait_archived(archive: BinlogArchive, target: str, timeout: float = 30.0) -> None:
    want = GtidPosition.parse(target)

    def archived() -> GtidPosition:
        txns = [t for _, t in archive.transactions()]
        return GtidPosition.parse(",".join(t.gtid for t in txns[-1:]))

    wait_until(lambda: archived().contains(want), timeout=timeout,
               what=lambda: f"the archive to reach the primary: archive at {archived()}, primary at {want}")


def row_ids(c: HACluster, address: ServerAddress, writer: str) -> set[int]:
    return {int(r["id"]) for r in c.sql(address, f"SELECT id FROM {TABLE} WHERE writer=%s", (writer,))}


def exact(c: HACluster, address: ServerAddress, w: Writer) -> None:
    """Every acknowledged insert of ``w`` is there and nothing it did not write (Jepsen-style)."""
    present = row_ids(c, address, w.name)
    acked = {a.id for a in w.acked}
    lost, unexpected = acked - present, present - acked - w.maybe
    assert not lost, f"{w.name}: acknowledged rows missing after restore: {sorted(lost)[:10]}"
    assert not unexpected, f"{w.name}: rows never acknowledged: {sorted(unexpected)[:10]}"
