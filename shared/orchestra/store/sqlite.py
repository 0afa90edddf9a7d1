"""SQLite adapter: the embedded default. WAL mode, one connection per thread, safe for several
processes writing the same file (writers wait on a busy timeout instead of failing).

A path that does not exist yet gets a new store: the schema is written to a temporary file in
the same directory, which is then linked into place, so no process ever sees a half-made store
and two processes starting together agree on one file. A path that exists must hold the schema:
an empty file, another application's SQLite database or any other file is refused with an error
naming it, never silently turned into a new history.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import StoreConfigError, StoreUnavailable
from .base import StateStore, Where, Write, matches

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
"""

_COLUMNS = frozenset({"collection", "id", "data"})
_USE_ANOTHER = (
    "point ORCHESTRA_STORE (or `store` in the configuration) at an Orchestra state file, or at a "
    "path that does not exist yet to start a new history"
)

_OPS = frozenset({"==", "<", "<=", ">", ">=", "in"})

# Queries follow Firestore's semantics so both adapters return the same documents. Firestore
# compares a value only with values of its own type (true is not 1, "x" is not greater than 3),
# so every comparison is guarded by the JSON types of the operand's class; and it orders across
# types as null < booleans < numbers < strings < arrays < maps.
_TYPE_RANK = (
    "CASE json_type(data, {path}) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 1 "
    "WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 WHEN 'array' THEN 4 ELSE 5 END"
)


def _path(field: str) -> str:
    if not all(part.replace("_", "").isalnum() for part in field.split(".")):
        raise ValueError(f"unsupported field name {field!r}")
    return f"'$.{field}'"


def _json_types(value: Any) -> str:
    """The ``json_type`` names of the values Firestore would compare ``value`` with."""
    if isinstance(value, bool):
        return "'true', 'false'"
    if isinstance(value, int | float):
        return "'integer', 'real'"
    if isinstance(value, str):
        return "'text'"
    raise ValueError(
        f"unsupported filter value {value!r} ({type(value).__name__}); "
        "accepted: None, booleans, numbers and strings"
    )


def _condition(path: str, op: str, value: Any, params: list[Any]) -> str:
    """SQL for one filter on the field at ``path``; appends its parameters to ``params``."""
    if op not in _OPS:
        raise ValueError(f"unsupported query operator {op!r}; accepted: {sorted(_OPS)}")
    if op == "in":
        # Firestore's IN never matches null, even with None among the values. One IN list per
        # type keeps the expression shallow however many values there are.
        by_types: dict[str, list[Any]] = {}
        for v in value:
            if v is not None:
                by_types.setdefault(_json_types(v), []).append(v)
        alternatives = []
        for types, values in by_types.items():
            params.extend(values)
            marks = ", ".join("?" for _ in values)
            alternatives.append(
                f"(json_type(data, {path}) IN ({types}) AND json_extract(data, {path}) IN ({marks}))"
            )
        return f"({' OR '.join(alternatives)})" if alternatives else "0"
    if value is None:
        if op != "==":
            raise ValueError(f"only '==' can compare with None, not {op!r}")
        return f"json_type(data, {path}) = 'null'"
    if op == "==" and isinstance(value, bool):
        return f"json_type(data, {path}) = '{'true' if value else 'false'}'"
    params.append(value)
    sql_op = "=" if op == "==" else op
    return f"(json_type(data, {path}) IN ({_json_types(value)}) AND json_extract(data, {path}) {sql_op} ?)"


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
        if not self.path.exists():
            self._create_file()
        self._check_file()
        self._conn()  # fail early on an unreadable file

    def _create_file(self) -> None:
        """A new store: the schema in a temporary file, linked to the path only if it is still
        free (another process may have created the store meanwhile: then that one is used)."""
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}-", suffix=".new", dir=self.path.parent)
        except OSError as exc:
            raise StoreConfigError(f"cannot create the SQLite store {self.path}: {exc.strerror}") from None
        os.close(fd)
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(_SCHEMA)
            finally:
                conn.close()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # created by another process since we looked: use that one
            except OSError:
                # No hard links on this file system: a rename is atomic too, and the path was
                # free a moment ago.
                if not self.path.exists():
                    os.replace(tmp, self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreConfigError(f"cannot create the SQLite store {self.path}: {exc}") from None
        finally:
            for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)

    def _check_file(self) -> None:
        """An existing file must be an Orchestra store; checked before anything is written to it."""
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            raise StoreConfigError(f"cannot read the SQLite store {self.path}: {exc.strerror}") from None
        if size == 0:
            raise StoreConfigError(
                f"SQLite store {self.path} is an empty file (0 bytes), not an Orchestra state store; "
                f"{_USE_ANOTHER}"
            )
        try:
            # Read-only: a file that turns out not to be ours is left exactly as it was.
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
                columns = {row[1] for row in conn.execute("PRAGMA table_info(docs)")}
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise StoreConfigError(f"cannot open SQLite store {self.path}: {exc}; {_USE_ANOTHER}") from None
        if not _COLUMNS <= columns:
            raise StoreConfigError(
                f"SQLite store {self.path} is an SQLite database without the Orchestra schema "
                f"(no docs table with {', '.join(sorted(_COLUMNS))}); refusing to use it: {_USE_ANOTHER}"
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
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

    def _write_all(self, writes: Sequence[Write]) -> bool:
        # One transaction: the conditional write's check and every write commit together.
        self._execute("BEGIN IMMEDIATE")
        try:
            conn = self._conn()
            for write in writes:
                if write.expect is None:
                    continue
                row = conn.execute(
                    "SELECT data FROM docs WHERE collection = ? AND id = ?", (write.collection, write.doc_id)
                ).fetchone()
                if row is None or not matches(json.loads(row[0]), write.expect):
                    conn.execute("ROLLBACK")
                    return False
            for write in writes:
                conn.execute(
                    "INSERT INTO docs (collection, id, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data",
                    (write.collection, write.doc_id, json.dumps(write.data)),
                )
            conn.execute("COMMIT")
            return True
        except BaseException:
            if self._conn().in_transaction:
                self._conn().execute("ROLLBACK")
            raise

    def _create_all(self, writes: Sequence[Write]) -> bool:
        # One transaction: every document is created (and every put written), or (one exists) none.
        self._execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                if write.put:
                    self._conn().execute(
                        "INSERT INTO docs (collection, id, data) VALUES (?, ?, ?) "
                        "ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data",
                        (write.collection, write.doc_id, json.dumps(write.data)),
                    )
                    continue
                cur = self._conn().execute(
                    "INSERT OR IGNORE INTO docs (collection, id, data) VALUES (?, ?, ?)",
                    (write.collection, write.doc_id, json.dumps(write.data)),
                )
                if cur.rowcount != 1:
                    self._conn().execute("ROLLBACK")
                    return False
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
            clauses.append(_condition(_path(field), op, value, params))
        order = ""
        if order_by:
            path = _path(order_by)
            direction = "DESC" if descending else "ASC"
            # Firestore leaves out documents without the field (null values stay) and breaks
            # ties on the document id, in the order's direction.
            clauses.append(f"json_type(data, {path}) IS NOT NULL")
            order = (
                f" ORDER BY {_TYPE_RANK.format(path=path)} {direction}, "
                f"json_extract(data, {path}) {direction}, id {direction}"
            )
        sql = f"SELECT data FROM docs WHERE {' AND '.join(clauses)}{order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [json.loads(row[0]) for row in self._execute(sql, tuple(params)).fetchall()]

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
