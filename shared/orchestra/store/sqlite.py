"""SQLite adapter: the embedded default. WAL mode, one connection per thread, safe for several
processes writing the same file (writers wait on a busy timeout instead of failing)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..errors import StoreConfigError, StoreUnavailable
from .base import StateStore, Where, lookup, matches

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
"""

_OPS = {"==": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _field_sql(field: str) -> str:
    if not all(part.replace("_", "").isalnum() for part in field.split(".")):
        raise ValueError(f"unsupported field name {field!r}")
    return f"json_extract(data, '$.{field}')"


class SqliteStateStore(StateStore):
    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreConfigError(
                f"cannot create the store directory {self.path.parent}: {exc.strerror}"
            ) from None
        if self.path.exists() and self.path.is_dir():
            raise StoreConfigError(f"store path {self.path} is a directory; give a file path")
        self._conn()  # fail early on an unreadable file

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreConfigError(f"cannot open SQLite store {self.path}: {exc}") from None
        self._local.conn = conn
        return conn

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._conn().execute(sql, params)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreUnavailable(f"SQLite store {self.path} is busy: {exc}") from exc
            raise StoreConfigError(f"SQLite store {self.path}: {exc}") from exc

    def _create(self, collection: str, doc_id: str, data: dict[str, Any]) -> bool:
        cur = self._execute(
            "INSERT OR IGNORE INTO docs (collection, id, data) VALUES (?, ?, ?)",
            (collection, doc_id, json.dumps(data)),
        )
        return cur.rowcount == 1

    def _get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        row = self._execute(
            "SELECT data FROM docs WHERE collection = ? AND id = ?", (collection, doc_id)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def _put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self._execute(
            "INSERT INTO docs (collection, id, data) VALUES (?, ?, ?) "
            "ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data",
            (collection, doc_id, json.dumps(data)),
        )

    def _update_if(self, collection: str, doc_id: str, data: dict[str, Any], expect: dict[str, Any]) -> bool:
        # BEGIN IMMEDIATE takes the write lock up front, so read-compare-write is atomic
        # across processes.
        self._execute("BEGIN IMMEDIATE")
        try:
            row = (
                self._conn()
                .execute("SELECT data FROM docs WHERE collection = ? AND id = ?", (collection, doc_id))
                .fetchone()
            )
            if row is None or not matches(json.loads(row[0]), expect):
                self._conn().execute("ROLLBACK")
                return False
            self._conn().execute(
                "UPDATE docs SET data = ? WHERE collection = ? AND id = ?",
                (json.dumps(data), collection, doc_id),
            )
            self._conn().execute("COMMIT")
            return True
        except BaseException:
            if self._conn().in_transaction:
                self._conn().execute("ROLLBACK")
            raise

    def _query(
        self,
        collection: str,
        where: list[Where],
        order_by: str | None,
        descending: bool,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        clauses = ["collection = ?"]
        params: list[Any] = [collection]
        for field, op, value in where:
            if op == "in":
                values = list(value)
                clauses.append(f"{_field_sql(field)} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
            else:
                clauses.append(f"{_field_sql(field)} {_OPS[op]} ?")
                params.append(value)
        sql = f"SELECT data FROM docs WHERE {' AND '.join(clauses)}"
        if order_by:
            sql += f" ORDER BY {_field_sql(order_by)} {'DESC' if descending else 'ASC'}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        docs = [json.loads(row[0]) for row in self._execute(sql, tuple(params)).fetchall()]
        # json_extract of a JSON null/boolean differs from Python equality in corner cases;
        # re-check equality filters in Python so both adapters agree exactly.
        return [d for d in docs if all(lookup(d, f) == v for f, op, v in where if op == "==")]

    def _delete(self, collection: str, doc_id: str) -> bool:
        cur = self._execute("DELETE FROM docs WHERE collection = ? AND id = ?", (collection, doc_id))
        return cur.rowcount == 1

    def ping(self) -> None:
        self._execute("SELECT 1").fetchone()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
