"""Initial data after bootstrap: repman's ``prov-db-load-sql`` and ``prov-db-load-csv``.

Each file is loaded once into the primary (replication carries it to the replicas). A
small table ``repman_meta.initial_data`` records the file name and its SHA-256, so a
re-run of ``up`` never loads a file twice; a file whose content changed after it was
loaded is reported and left alone (a script is not assumed to be re-runnable).
Statements go through the admin connection, never a client process: no password on a
command line or in an environment.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path
from typing import Callable, Sequence

import pymysql
from pymysql.constants import CLIENT

from repman.db import Credential, ServerAddress
from repman.errors import BootstrapError

_CSV_NAME = re.compile(r"^(?P<schema>[A-Za-z0-9_$]+)\.(?P<table>[A-Za-z0-9_$]+)\.csv$")
_NAME = re.compile(r"[A-Za-z0-9_$]+")
_BATCH = 500


def _connect(primary: ServerAddress, admin: Credential) -> pymysql.connections.Connection:
    return pymysql.connect(host=primary.host, port=primary.port, user=admin.user, password=admin.password,
                           connect_timeout=5, autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _loaded(cur: pymysql.cursors.Cursor) -> dict[str, str]:
    cur.execute("CREATE DATABASE IF NOT EXISTS repman_meta")
    cur.execute("CREATE TABLE IF NOT EXISTS repman_meta.initial_data (name VARCHAR(255) PRIMARY KEY, "
                "sha256 CHAR(64) NOT NULL, loaded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    cur.execute("SELECT name, sha256 FROM repman_meta.initial_data")
    return {str(name): str(sha) for name, sha in cur.fetchall()}


def _run_sql(cur: pymysql.cursors.Cursor, path: Path) -> None:
    cur.execute(path.read_text())
    while cur.nextset():
        pass


def _load_csv(cur: pymysql.cursors.Cursor, path: Path) -> int:
    match = _CSV_NAME.match(path.name)
    if not match:
        raise BootstrapError(f"prov-db-load-csv: {path.name!r} must be named <schema>.<table>.csv")
    with path.open(newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if not header:
            raise BootstrapError(f"prov-db-load-csv: {path} is empty (the first line names the columns)")
        bad = [c for c in header if not _NAME.fullmatch(c.strip())]
        if bad:
            raise BootstrapError(f"prov-db-load-csv: {path.name}: column name {bad[0]!r} is not a plain identifier")
        columns = ", ".join(f"`{c.strip()}`" for c in header)
        sql = (f"INSERT INTO `{match['schema']}`.`{match['table']}` ({columns}) "
               f"VALUES ({', '.join(['%s'] * len(header))})")
        count, batch = 0, []
        for row in rows:
            batch.append([None if v == "" else v for v in row])
            if len(batch) >= _BATCH:
                count += cur.executemany(sql, batch) or 0
                batch = []
        if batch:
            count += cur.executemany(sql, batch) or 0
    return count


def load_initial_data(primary: ServerAddress, admin: Credential, sql_files: Sequence[str],
                      csv_files: Sequence[str], progress: Callable[[str], None] = lambda m: None) -> list[str]:
    """Load what was not loaded yet (SQL files first, then CSV files, each in order); returns the actions."""
    files = [("sql", Path(p)) for p in sql_files] + [("csv", Path(p)) for p in csv_files]
    if not files:
        return []
    for kind, path in files:
        if not path.is_file():
            raise BootstrapError(f"prov-db-load-{kind}: {path} is not a file")
    actions: list[str] = []
    conn = _connect(primary, admin)
    try:
        with conn.cursor() as cur:
            done = _loaded(cur)
            for kind, path in files:
                digest = _digest(path)
                if path.name in done:
                    if done[path.name] != digest:
                        progress(f"{path.name} changed since it was loaded: not loaded again")
                    continue
                try:
                    if kind == "sql":
                        _run_sql(cur, path)
                        what = f"ran {path.name}"
                    else:
                        what = f"loaded {_load_csv(cur, path)} rows from {path.name}"
                except pymysql.MySQLError as exc:
                    raise BootstrapError(f"prov-db-load-{kind}: {path.name}: {exc.args[-1]}") from None
                cur.execute("INSERT INTO repman_meta.initial_data (name, sha256) VALUES (%s, %s)",
                            (path.name, digest))
                progress(what)
                actions.append(what)
    finally:
        conn.close()
    return actions
