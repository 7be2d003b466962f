"""Read MariaDB binlog files event by event (header walk, no SQL decoding).

The archive needs three facts the text output of mariadb-binlog only gives
indirectly: where each transaction starts and ends (byte offsets, to cut a
file after the last complete transaction), its GTID, and its timestamp (for
restore to a time). Every event starts with a 19-byte header: timestamp,
type, server id, size, next position, flags.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from repman.gtid import GtidPosition

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")
QUERY, ROTATE, FORMAT_DESCRIPTION, XID = 2, 4, 15, 16
GTID, GTID_LIST = 162, 163
FL_STANDALONE = 1


@dataclass(frozen=True)
class Event:
    offset: int
    end: int
    type: int
    timestamp: int
    server_id: int
    body: bytes


@dataclass(frozen=True)
class Transaction:
    gtid: str          # domain-server-seq
    start: int         # offset of its GTID event
    end: int           # offset just after its last event
    timestamp: int     # the GTID event's timestamp (whole seconds, as mariadb-binlog shows it)

    @property
    def domain(self) -> int:
        return int(self.gtid.split("-")[0])

    @property
    def seq(self) -> int:
        return int(self.gtid.split("-")[2])


def events(path: Path) -> Iterator[Event]:
    """Every complete event of the file; a torn last event is ignored."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a binlog file")
    offset = len(MAGIC)
    while offset + HEADER.size <= len(data):
        timestamp, etype, server_id, size, _next, _flags = HEADER.unpack_from(data, offset)
        if size < HEADER.size or offset + size > len(data):
            return
        yield Event(offset, offset + size, etype, timestamp, server_id, data[offset + HEADER.size: offset + size])
        offset += size


def _checksum_length(fd: Event) -> int:
    # The format description ends with the checksum algorithm (1 byte) and a CRC32 when it is 1.
    return 4 if len(fd.body) >= 5 and fd.body[-5] == 1 else 0


def _query_text(ev: Event, crc: int) -> bytes:
    body = ev.body
    if len(body) < 13:
        return b""
    db_len = body[8]
    status_len = struct.unpack_from("<H", body, 11)[0]
    start = 13 + status_len + db_len + 1
    return body[start: len(body) - crc] if crc else body[start:]


def transactions(path: Path) -> list[Transaction]:
    """Complete transactions of one binlog file, in order."""
    out: list[Transaction] = []
    crc = 4
    current: tuple[str, int, int, bool] | None = None  # gtid, start, timestamp, standalone
    for ev in events(path):
        if ev.type == FORMAT_DESCRIPTION:
            crc = _checksum_length(ev)
            continue
        if ev.type == GTID:
            seq, domain = struct.unpack_from("<QI", ev.body, 0)
            flags = ev.body[12]
            current = (f"{domain}-{ev.server_id}-{seq}", ev.offset, ev.timestamp, bool(flags & FL_STANDALONE))
            continue
        if current is None:
            continue
        gtid, start, ts, standalone = current
        done = standalone and ev.type == QUERY
        if not standalone:
            if ev.type == XID:
                done = True
            elif ev.type == QUERY:
                text = _query_text(ev, crc).strip().upper()
                done = text in (b"COMMIT", b"ROLLBACK") or text.startswith(b"XA COMMIT")
        if done:
            out.append(Transaction(gtid, start, ev.end, ts))
            current = None
    return out


def complete_end(path: Path) -> int:
    """Offset just after the last complete transaction (or after the header events when none)."""
    txns = transactions(path)
    if txns:
        return txns[-1].end
    end = len(MAGIC)
    for ev in events(path):
        if ev.type == GTID:
            break
        end = ev.end
    return end


def gtid_position(txns: list[Transaction]) -> GtidPosition:
    last: dict[int, str] = {}
    for t in txns:
        last[t.domain] = t.gtid
    return GtidPosition.parse(",".join(last.values()))
