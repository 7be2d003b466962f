"""Client-side MariaDB password hashes, so a clear password never reaches a binlog or a log.

``CREATE USER ... IDENTIFIED BY 'clear'`` is written verbatim to the binary log
(and so to every replica, every backup and every reader with BINLOG MONITOR).
``IDENTIFIED BY PASSWORD '*<hex>'`` carries only the ``mysql_native_password``
hash, computed here, which is what the server stores anyway.
"""

from __future__ import annotations

import hashlib


def native_password_hash(password: str) -> str:
    """``*`` + upper-case hex of SHA1(SHA1(password)), as MariaDB's PASSWORD() returns."""
    inner = hashlib.sha1(password.encode("utf-8")).digest()
    return "*" + hashlib.sha1(inner).hexdigest().upper()

