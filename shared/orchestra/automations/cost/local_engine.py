"""The DuckDB engine of local billing export files: the CLI's, when DuckDB is installed.

The Cloud Functions do not ship DuckDB (it is a development and benchmark dependency only), so
there every file goes through the pure readers of :mod:`.billing`; in the cloud the aggregation
runs in BigQuery anyway. Where DuckDB is importable, a plain local file (``.csv``, ``.jsonl``,
``.json``, ``.ndjson``; never ``.gz``) is parsed by DuckDB and its columns go through the same
validation as the pure readers' (:class:`.billing._Builder`), so both give the same rows, values
and names. The engine only takes files it can read exactly as the pure readers do: at the first
sign of anything else (a malformed or rejected row, a layout it does not handle, any DuckDB
error) it gives up and the pure reader reads the file, so every error and bad-row message is the
pure reader's own (file:line, what was wrong, what is accepted).

The bounded-input checks come first: the file is opened with :func:`orchestra.inputs.open_input`
(a regular file within ``inputs.max_bytes``) and DuckDB reads that open file (``/proc/self/fd``;
where there is none, the path, checked to be the same file before and after).

``ORCHESTRA_COST_ENGINE`` (or ``read_billing_file(engine=...)``) chooses: ``auto`` (the default:
DuckDB when installed, for files of ENGINE_MIN_BYTES or more), ``pure`` (never DuckDB),
``duckdb`` (DuckDB required, any size).
"""

from __future__ import annotations

import codecs
import csv
import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ...errors import InputError
from ...inputs import excerpt, open_input
from ...toolkit.rows import MAX_RECORD_CHARS, is_gzip
from .billing import COLUMNS, NO_SKU, REQUIRED, Factor, _Builder, _credit_texts, _lookup, resolve_columns

if TYPE_CHECKING:
    import duckdb

Engine = Literal["auto", "pure", "duckdb"]
ENGINE_ENV = "ORCHESTRA_COST_ENGINE"
ENGINES: tuple[Engine, ...] = ("auto", "pure", "duckdb")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
# ``auto`` leaves smaller files to the pure reader: importing DuckDB and starting it (about
# 0.13 s of CPU) costs more than the pure reader takes for them.
ENGINE_MIN_BYTES = 16 * 1024 * 1024
# The csv module refuses a longer field (csv.field_size_limit()); DuckDB is told to refuse a
# longer line, so that it never accepts a field the pure reader would refuse.
MAX_CSV_LINE = 131072
# The pure reader's JSON parser gives up on nesting deeper than about a thousand levels; a line
# shorter than this cannot nest that deep, a longer one is left to the pure reader.
MAX_JSON_LINE = 900
# Bytes read at a time while checking a file's text.
CHECK_BYTES = 1 << 20
# More lines longer than MAX_JSON_LINE than this: the pure reader reads the file.
MAX_LONG_LINES = 10_000
_ESCAPED_ASCII = re.compile(rb"\\u00[0-7]")
_BOM = b"\xef\xbb\xbf"
_TEXT_KEYS = ("service", "sku", "start", "project", "currency")
# JSON keys the pure reader's lookup may take instead of the export's own: the dotted ones come
# first whatever their value (so their mere presence sends the file to the pure reader), the
# others only matter when not null (DuckDB reads them, and any value does the same).
_DOTTED_KEYS = tuple(name for key in ("service", "sku", "project") for name in COLUMNS[key] if "." in name)
_OTHER_KEYS = tuple(
    name
    for key in ("service", "sku", "project", "credits")
    for name in COLUMNS[key][1:]
    if name not in _DOTTED_KEYS and name != key
)
# A dotted key's tail after its '.', with the closing quote: ".description", ".id".
_TAILS = tuple(sorted({("." + name.partition(".")[2] + '"').encode() for name in _DOTTED_KEYS}))
_TAIL_LETTERS = np.frombuffer(bytes(sorted({tail[1] for tail in _TAILS})), dtype=np.uint8)
# The JSON fields the engine reads, by their export names (the nested ones as whole objects).
_JSON_FIELDS = {
    "service": "service",
    "sku": "sku",
    "start": "usage_start_time",
    "project": "project",
    "cost": "cost",
    "credits": "credits",
    "currency": "currency",
}
_CLOSE_CURLY, _COMMA, _SPACE, _TAB, _N, _A, _I, _F, _DOT = (ord(c) for c in "}, \tnaif.")
# Bytes scanned at a time for lenient JSON (small enough for the temporaries to stay in cache).
SCAN_BYTES = 1 << 18
# More ``nan``/``inf`` letter runs than this (in words, names): the pure reader reads the file.
MAX_LITERAL_CHECKS = 1000
_NULL_TEXT = "\\x01"
# A strict JSON number, a JSON string without escapes or control characters, one record of them.
_JSON_NUMBER = "-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][+-]?[0-9]+)?"
_JSON_TEXT = '"[^"\\\\\\x00-\\x1f]*"'
_MEMBER = f"{_JSON_TEXT} ?: ?({_JSON_TEXT}|{_JSON_NUMBER})"
_AMOUNT = f'"amount" ?: ?({_JSON_NUMBER})'
_ONE_CREDIT = f"\\[ ?\\{{ ?({_MEMBER} ?, ?)*{_AMOUNT}( ?, ?{_MEMBER})* ?\\}} ?\\]"
_NUMBER = "[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"


class _GiveUp(Exception):
    """The engine cannot read this file exactly as the pure reader would: the pure reader does."""


def chosen_engine(engine: str | None = None) -> Engine:
    """``engine``, else ``ORCHESTRA_COST_ENGINE``, else ``auto``; InputError for anything else."""
    raw = engine if engine is not None else os.environ.get(ENGINE_ENV, "")
    value = raw.strip().lower() or "auto"
    for known in ENGINES:
        if value == known:
            if known == "duckdb" and not duckdb_installed():
                raise InputError(
                    "the duckdb engine was asked for but DuckDB is not installed; install it "
                    "(requirements-dev.txt) or use auto or pure",
                    where=ENGINE_ENV if engine is None else "engine",
                )
            return known
    raise InputError(
        f"{excerpt(raw)} is not a billing file engine; expected one of {', '.join(ENGINES)}",
        where=ENGINE_ENV if engine is None else "engine",
    )


def duckdb_installed() -> bool:
    """Whether DuckDB can be imported (without importing it)."""
    return importlib.util.find_spec("duckdb") is not None


def engine_format(path: str | os.PathLike[str]) -> Literal["csv", "jsonl"] | None:
    """The format the engine reads ``path`` as, from its extension; None for files it leaves to
    the pure reader (compressed, or no telling extension)."""
    if is_gzip(path):
        return None
    suffix = Path(path).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    return None


def read_with_duckdb(
    path: str | os.PathLike[str], *, source: str, max_bytes: int, min_bytes: int = 0
) -> _Builder | None:
    """The rows of a local export file read by DuckDB, validated as the pure readers validate
    them; None when the pure reader must read it (see the module's description), and for files
    smaller than ``min_bytes``."""
    kind = engine_format(path)
    if kind is None:
        return None
    try:
        with _checked_file(path, source, max_bytes, min_bytes, keep=kind == "jsonl") as (fd_path, data):
            import duckdb

            con = duckdb.connect()
            try:
                if kind == "csv":
                    return _read_csv(con, fd_path, data, source)
                return _read_jsonl(con, fd_path, data, source)
            except duckdb.Error:
                raise _GiveUp from None
            finally:
                con.close()
    except (_GiveUp, InputError):
        # Whatever the engine cannot read exactly, the pure reader reads (and names any problem).
        return None


@contextmanager
def _checked_file(
    path: str | os.PathLike[str], source: str, max_bytes: int, min_bytes: int, keep: bool
) -> Iterator[tuple[str, bytes]]:
    """The open file (a path to it that DuckDB can open, and its bytes) after the checks of
    :func:`orchestra.inputs.open_input` and the pure reader's text checks: strict UTF-8 without a
    byte order mark, no NUL, lines ending in ``\\n`` only. _GiveUp for anything else.

    The bytes are read (at most ``max_bytes``), not mapped: a file truncated while mapped would
    kill the process. ``keep``: all of them are kept and given; otherwise only the first line."""
    raw = open_input(path, max_bytes=max_bytes, where=source)
    try:
        fd = raw.fileno()
        before = os.fstat(fd)
        if before.st_size < max(min_bytes, 1):
            raise _GiveUp
        fd_path = f"/proc/self/fd/{fd}"
        if not os.path.exists(fd_path):
            fd_path = os.fspath(path)
            if not _same_file(os.stat(fd_path), before):
                raise _GiveUp
        data = _checked_text(raw, before.st_size, keep)
        yield fd_path, data
        after = os.fstat(fd)
        if not _same_file(after, before) or after.st_size > max_bytes:
            raise _GiveUp  # changed while read: the pure reader reads it (within the limit)
    finally:
        raw.close()


def _checked_text(raw: Any, size: int, keep: bool) -> bytes:
    """The file's bytes (``keep``: read at once) or its first line (read a block at a time, kept
    no longer); _GiveUp for a byte order mark, NUL, CR, bytes that are not UTF-8, or a size other
    than ``size``."""
    if keep:
        data = raw.read(size + 1)  # InputError past max_bytes, as the pure reader says
        if len(data) != size or data.startswith(_BOM) or b"\x00" in data or b"\r" in data:
            raise _GiveUp
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise _GiveUp from None
        return data
    decoder = codecs.getincrementaldecoder("utf-8")()
    head = b""
    read = 0
    while True:
        block = raw.read(CHECK_BYTES)  # InputError past max_bytes, as the pure reader says
        read += len(block)
        if not block:
            break
        if not head.endswith(b"\n") and len(head) <= MAX_CSV_LINE:  # a longer header is not read here
            head += block
            if b"\n" in head:
                head = head[: head.index(b"\n") + 1]
        if b"\x00" in block or b"\r" in block:
            raise _GiveUp
        if not block.isascii() or decoder.getstate()[0]:
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                raise _GiveUp from None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _GiveUp from None
    if read != size or head.startswith(_BOM):
        raise _GiveUp
    return head


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


def _factor(con: duckdb.DuckDBPyConnection, column: str) -> tuple[str, list[Any]]:
    """An ENUM of ``column``'s distinct values; (SQL giving each row's code, the values)."""
    con.execute(f"CREATE TYPE enum_{column} AS ENUM (SELECT DISTINCT {column} FROM raw)")
    values = [row[0] for row in con.execute(f"SELECT unnest(enum_range(NULL::enum_{column}))").fetchall()]
    return f"enum_code({column}::enum_{column}) AS {column}", values


def _read_csv(con: duckdb.DuckDBPyConnection, fd_path: str, data: bytes, source: str) -> _Builder:
    """``data``: the header line."""
    if not data.endswith(b"\n") or b'"' in data:
        raise _GiveUp  # a quoted header (it may span lines), or no row: the pure reader reads it
    head = data[:-1]
    header = next(csv.reader([head.decode("utf-8")]))
    cols = resolve_columns(header, source)
    index = {name.strip(): i for i, name in enumerate(header)}
    at = {key: index[name.strip()] for key, name in cols.items()}
    width = len(header)
    # One column more than the header names, padded with NULL where a row has fewer fields: DuckDB
    # passes over empty fields past the last column, the csv module counts them. Otherwise only a
    # field holding _NULL_TEXT reads as NULL (and sends the file to the pure reader).
    spec = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width + 1)) + "}"
    read = [key for key in (*_TEXT_KEYS, "cost", "credits") if key in at]
    whole = " AND ".join(
        [*(f"c{at[key]} IS NOT NULL" for key in read), f"c{width - 1} IS NOT NULL", f"c{width} IS NULL"]
    )
    select = ", ".join(f"c{at[key]} AS {key}" for key in read)
    con.execute(
        f"CREATE TEMP TABLE raw AS SELECT {select}, {whole} AS whole FROM read_csv(?, header = true, "
        f"auto_detect = false, columns = {spec}, delim = ',', quote = '\"', escape = '\"', "
        f"new_line = '\\n', strict_mode = true, null_padding = true, nullstr = '{_NULL_TEXT}', "
        f"max_line_size = {MAX_CSV_LINE})",
        [fd_path],
    )

    def credits_of(rows: int) -> np.ndarray:
        credits = np.zeros(rows)
        if "credits" not in at:
            return credits
        # The export's own shape, one credit record (most credited rows): its amount read here
        # (a JSON subset both parsers read alike, one "amount" only); any other: the pure parsers.
        con.execute(
            "CREATE TEMP TABLE credited AS SELECT rowid AS row, credits, "
            f"regexp_full_match(credits, '{_ONE_CREDIT}') "
            "AND strlen(credits) - strlen(replace(credits, '\"amount\"', '')) = 8 AS single "
            "FROM raw WHERE credits <> '' AND credits <> '[]'"
        )
        listed = con.execute(
            f"SELECT row, CAST(regexp_extract(credits, '{_AMOUNT}', 1) AS DOUBLE) AS amount FROM credited "
            "WHERE single"
        ).fetchnumpy()
        amounts = np.asarray(listed["amount"], dtype=np.float64) + 0.0  # -0.0 as the sum from 0 gives it
        if not np.isfinite(amounts).all():
            raise _GiveUp
        credits[np.asarray(listed["row"], dtype=np.int64)] = amounts
        listed = con.execute("SELECT row, credits FROM credited WHERE NOT single").fetchnumpy()
        if len(listed["row"]):
            credits[np.asarray(listed["row"], dtype=np.int64)] = _credit_sums(list(listed["credits"]))
        return credits

    # Every row of the header's width, every cost a plain number.
    ok = f"whole AND regexp_full_match(cost, '{_NUMBER}')"
    return _add(con, [k for k in _TEXT_KEYS if k in at], ok, credits_of, source)


def _credit_sums(values: list[Any]) -> np.ndarray:
    """Credit sums of the rows that hold credits, as the pure reader computes them."""
    sums = _credit_texts(values) if all(isinstance(v, str) for v in values) else None
    if sums is not None:
        return sums
    out = np.zeros(len(values))
    reasons: dict[int, str] = {}
    _Builder._credits(values, out, reasons)
    if reasons:
        raise _GiveUp
    return out


def _add(
    con: duckdb.DuckDBPyConnection,
    keys: list[str],
    ok: str,
    credits_of: Callable[[int], np.ndarray],
    source: str,
    decode: Callable[[str, list[Any]], list[Any]] | None = None,
) -> _Builder:
    """The rows of table ``raw`` (``keys`` as codes into their distinct values, ``cost`` as
    float64) through the pure readers' validation, when SQL ``ok`` holds for every row."""
    factors: dict[str, Factor] = {}
    selects = []
    values_of = {}
    for key in keys:
        select, values = _factor(con, key)
        selects.append(select)
        values_of[key] = values
    columns = con.execute(
        f"SELECT {', '.join(selects)}, CAST(cost AS DOUBLE) AS cost, coalesce({ok}, false) AS ok FROM raw"
    ).fetchnumpy()
    checked = np.asarray(columns["ok"], dtype=bool)
    rows = len(checked)
    if not rows or not checked.all():
        raise _GiveUp  # no rows, or one the pure reader reads otherwise (and names)
    for key in keys:
        values = values_of[key] if decode is None else decode(key, values_of[key])
        factors[key] = Factor(values, np.asarray(columns[key], dtype=np.intp))
    costs = np.asarray(columns["cost"], dtype=np.float64)
    builder = _Builder(source)
    builder.add(
        range(1, rows + 1),
        factors["service"],
        factors.get("sku") or Factor([NO_SKU], np.zeros(rows, dtype=np.intp)),
        factors["start"],
        factors["project"],
        costs,
        credits_of(rows),
        factors.get("currency"),
    )
    if builder.bad.count:
        raise _GiveUp  # bad rows are named by the pure reader, with their lines
    return builder


def _read_jsonl(con: duckdb.DuckDBPyConnection, fd_path: str, data: bytes, source: str) -> _Builder:
    import orjson

    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == ord("\n"))
    if not len(ends) or ends[-1] != len(buf) - 1:
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1] + 1])
    long_lines = np.flatnonzero(ends - starts > MAX_JSON_LINE)
    if len(long_lines) > MAX_LONG_LINES:
        raise _GiveUp
    for i in long_lines.tolist():
        line = data[int(starts[i]) : int(ends[i])]
        if len(line) > MAX_RECORD_CHARS or line.count(b"[") + line.count(b"{") > MAX_JSON_LINE:
            raise _GiveUp  # too long, or may nest deeper than the pure reader's parser goes
    if _lenient_json(data):
        raise _GiveUp
    spec = "{" + ", ".join(f"'{name}': 'JSON'" for name in (*_JSON_FIELDS.values(), *_OTHER_KEYS)) + "}"
    # Absent or null (NULL to DuckDB) is JSON null to the lookup; the required ones are checked.
    select = ", ".join(
        f"CAST(coalesce(\"{name}\", 'null'::JSON) AS VARCHAR) AS {key}"
        if key in _TEXT_KEYS
        else f'"{name}" AS {key}'
        for key, name in _JSON_FIELDS.items()
    )
    # Any of the other spellings present (not null): the pure reader reads the file.
    select += ", (" + " OR ".join(f'"{name}" IS NOT NULL' for name in _OTHER_KEYS) + ") AS other"
    con.execute(
        f"CREATE TEMP TABLE raw AS SELECT {select} FROM read_json(?, format = 'newline_delimited', "
        f"records = true, columns = {spec}, maximum_object_size = {MAX_RECORD_CHARS})",
        [fd_path],
    )
    # The required fields present, every cost a plain JSON number, no other spelling.
    ok = " AND ".join(
        [
            *(f"{key} IS NOT NULL" if key == "cost" else f"{key} <> 'null'" for key in REQUIRED),
            "json_type(cost) IN ('DOUBLE', 'BIGINT', 'UBIGINT')",
            f"regexp_full_match(CAST(cost AS VARCHAR), '{_NUMBER}')",
            "NOT other",
        ]
    )

    def credits_of(rows: int) -> np.ndarray:
        credits = np.zeros(rows)
        listed = con.execute(
            "SELECT rowid, CAST(credits AS VARCHAR) AS credits FROM raw "
            "WHERE credits IS NOT NULL AND CAST(credits AS VARCHAR) <> '[]'"
        ).fetchnumpy()
        if len(listed["rowid"]):
            try:
                parsed = orjson.loads("[" + ",".join(listed["credits"].tolist()) + "]")
            except orjson.JSONDecodeError:
                raise _GiveUp from None
            credits[np.asarray(listed["rowid"], dtype=np.int64)] = _credit_sums(parsed)
        return credits

    def decode(key: str, texts: list[str]) -> list[Any]:
        """The values the pure reader's lookup finds in each distinct JSON text of ``key``."""
        out = []
        for text in texts:
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise _GiveUp from None
            found, found_value = _lookup({_JSON_FIELDS[key]: value}, COLUMNS[key])
            if not found and key in REQUIRED:
                raise _GiveUp
            out.append(found_value)
        return out

    return _add(con, list(_TEXT_KEYS), ok, credits_of, source, decode)


def _lenient_json(data: bytes) -> bool:
    """Whether the bytes may hold what DuckDB's JSON parser accepts and the pure reader's does
    not: a comma before a closing bracket, or a ``nan``/``inf``/``infinity`` literal in another
    spelling than ``NaN``/``Infinity``. Strings are not told apart, so such text inside a string
    may count too (the pure reader then reads the file: slower, never different)."""
    if b"\\" in data and _ESCAPED_ASCII.search(data) is not None:
        return True  # an escaped ASCII character: it could spell a key
    buf = np.frombuffer(data, dtype=np.uint8)
    size = len(buf)
    literals = 0
    for offset in range(0, max(size - 1, 0), SCAN_BYTES):
        chunk = buf[offset : offset + SCAN_BYTES + 8]
        # ']' and '}' are the bytes whose ASCII lower case is '}'.
        closing = (chunk[1:] | 0x20) == _CLOSE_CURLY
        before = chunk[:-1]
        if (closing & ((before == _COMMA) | (before == _SPACE) | (before == _TAB))).any():
            return True
        lower = chunk | 0x20
        first, middle, last = lower[:-2], lower[1:-1], lower[2:]
        word = ((first == _N) & (middle == _A) & (last == _N)) | (
            (first == _I) & (middle == _N) & (last == _F)
        )
        # A dotted key the lookup takes first.
        dots = np.flatnonzero(chunk[:SCAN_BYTES] == _DOT) + offset
        if len(dots) and any(
            data[at : at + len(tail)] == tail for at in _dotted_tails(buf, dots) for tail in _TAILS
        ):
            return True
        hits = np.flatnonzero(word[:SCAN_BYTES])
        literals += len(hits)
        if literals > MAX_LITERAL_CHECKS:
            return True
        for at in (hits + offset).tolist():
            if _literal_at(data, at):
                return True
    return False


def _dotted_tails(buf: np.ndarray, dots: np.ndarray) -> list[int]:
    """Of the '.' at ``dots``, those followed by the first letter of a dotted key's tail."""
    after = buf[np.minimum(dots + 1, len(buf) - 1)]
    return dots[(after == _TAIL_LETTERS[0]) | (after == _TAIL_LETTERS[-1])].tolist()


def _literal_at(data: bytes, at: int) -> bool:
    """Whether the ``nan``/``inf`` letters at ``at`` may be a literal in a value's place: after
    ':', ',' or '[' (past blanks and a minus) and followed by the end of a value."""
    before = at - 1
    while before >= 0 and data[before] in b" \t-":
        before -= 1
    if before < 0 or data[before] not in b":,[":
        return False
    rest = bytes(data[at : at + 9]).lower()
    length = 8 if rest.startswith(b"infinity") else 3
    return length >= len(rest) or rest[length] in b",]} \t\n"
