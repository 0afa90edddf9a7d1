"""Cloud Billing export readers: local CSV / JSON lines files and the BigQuery export table.

Every reader produces a :class:`BillingData`: one entry per input row (or per aggregated row
from BigQuery) as parallel numpy arrays of integer codes, so that a million rows aggregate in a
fraction of a second. Days are UTC calendar days (``date.toordinal()``).

Column names are those of the standard export (``service.description``, ``sku.description``,
``usage_start_time``, ``usage_end_time``, ``project.id``, ``cost``, ``credits``, ``labels``,
``currency``). A CSV cannot hold the export's nested fields, so flattened spellings
(``service_description``, ``project_id``...) are accepted too; JSON lines may be nested as
BigQuery's JSON export writes them (``{"service": {"description": ...}}``).
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import InputError
from ...inputs import DEFAULT_MAX_BYTES, excerpt
from ...toolkit.rows import BadRows, RowCounter, is_name, json_objects, short
from .blocks import Factor, csv_block, csv_text, json_column, json_records, open_blocks

if TYPE_CHECKING:
    from . import BigQuerySettings

# canonical key -> accepted column names (first is the export's own name)
COLUMNS: dict[str, tuple[str, ...]] = {
    "service": ("service.description", "service_description", "service"),
    "sku": ("sku.description", "sku_description", "sku"),
    "start": ("usage_start_time",),
    "end": ("usage_end_time",),
    "project": ("project.id", "project_id", "project"),
    "cost": ("cost",),
    "credits": ("credits", "credits.amount", "credits_amount", "total_credits"),
    "labels": ("labels",),
    "currency": ("currency",),
}
REQUIRED = ("service", "start", "project", "cost")
NO_PROJECT = "(no project)"
NO_SKU = "(no sku)"
CHUNK = 65536
# Anything that is not plain text where a name belongs (a JSON object, a list): refused.
_NOT_TEXT = object()


@dataclass
class BillingData:
    """Parallel arrays, one element per row; ``*_names`` decode the integer codes."""

    day: np.ndarray  # int64 date ordinals (UTC)
    project: np.ndarray  # int32 codes into project_names
    service: np.ndarray
    sku: np.ndarray
    cost: np.ndarray  # float64 gross cost
    credits: np.ndarray  # float64, negative amounts
    project_names: list[str]
    service_names: list[str]
    sku_names: list[str]
    currency: str
    source: str
    rows: int
    bad: BadRows
    sample: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def net(self) -> np.ndarray:
        return self.cost + self.credits

    def summary(self) -> dict[str, Any]:
        first = dt.date.fromordinal(int(self.day.min())).isoformat() if len(self.day) else None
        last = dt.date.fromordinal(int(self.day.max())).isoformat() if len(self.day) else None
        return {
            "source": self.source,
            "sample": self.sample,
            "rows": self.rows,
            "bad_rows": self.bad.as_dict(),
            "currency": self.currency,
            "first_day": first,
            "last_day": last,
            "projects": len(self.project_names),
            "services": len(self.service_names),
            "notes": self.notes,
        }


class _Vocab:
    """Raw value -> dense integer code of its normalised name, growing as values appear.

    Normalisation and validation run once per distinct value (a few hundred), not per row."""

    def __init__(self, normalize: Callable[[Any], str | None]) -> None:
        self.normalize = normalize
        self.codes: dict[Any, int] = {}
        self.by_name: dict[str, int] = {}
        self.names: list[str] = []

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        """Codes per value; -1 where ``normalize`` rejected the value."""
        codes = self.codes
        try:
            fresh = set(values).difference(codes)
        except TypeError:  # unhashable values (a JSON object where a string belongs)
            values = [v if isinstance(v, str | int | float | type(None)) else _NOT_TEXT for v in values]
            fresh = set(values).difference(codes)
        for value in fresh:
            name = self.normalize(value)
            if name is None:
                codes[value] = -1
                continue
            code = self.by_name.get(name)
            if code is None:
                code = self.by_name[name] = len(self.names)
                self.names.append(name)
            codes[value] = code
        return np.fromiter(map(codes.__getitem__, values), dtype=np.int32, count=len(values))


def _required_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if text and is_name(text) else None


def _or(default: str) -> Callable[[Any], str | None]:
    def normalize(value: Any) -> str | None:
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            return None
        text = value.strip()
        return (text if is_name(text) else None) if text else default

    return normalize


def parse_day(value: str) -> int:
    """A usage timestamp -> UTC date ordinal. Accepts BigQuery's ``2025-01-31 23:00:00 UTC``,
    ISO 8601 with ``Z`` or an offset, naive timestamps (taken as UTC) and bare dates."""
    if not isinstance(value, str):
        raise TypeError(f"expected a timestamp as text, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    if not text:
        raise ValueError("empty timestamp")
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.toordinal()


def credits_amount(value: Any) -> float:
    """The export's ``credits`` (a repeated record) -> the sum of its amounts.

    Accepts the record list itself (JSON lines), its JSON text (CSV), a bare number (exports
    flattened with ``SUM(c.amount)``) or empty."""
    if value is None or value == "" or value == "[]":
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    else:
        if isinstance(value, str):
            try:
                return _finite(float(value))
            except ValueError:
                value = json.loads(value)
        if not isinstance(value, list):
            raise ValueError("expected a list of {name, amount} records or a number")
        amount = 0.0
        for item in value:
            if isinstance(item, dict):
                raw = item.get("amount")
            else:
                raw = item
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError("credit without a numeric amount")
            amount += float(raw)
    return _finite(amount)


def credit_sums(values: Sequence[Any]) -> np.ndarray | None:
    """Per row, the sum of the amounts of a list of credit records (the export's own shape:
    every record a dict whose ``amount`` is a float), as the row-by-row sum gives it; None when
    any row has another shape or a sum is not finite (then each row is read on its own)."""
    if set(map(type, values)) != {list}:
        return None
    counts = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    items = list(chain.from_iterable(values))
    if not items:
        return np.zeros(len(values))
    if set(map(type, items)) != {dict}:
        return None
    try:
        amounts = list(map(itemgetter("amount"), items))
    except KeyError:
        return None
    if set(map(type, amounts)) != {float}:
        return None
    flat = np.array(amounts, dtype=np.float64)
    sums = np.zeros(len(values))
    single = counts == 1
    # A row's one amount is its sum (+ 0.0 turns -0.0 into 0.0, as the sum from 0 does).
    sums[single] = flat[(np.cumsum(counts) - 1)[single]] + 0.0
    for i in np.flatnonzero(counts > 1).tolist():
        sums[i] = sum(item["amount"] for item in values[i]) + 0.0
    return sums if np.isfinite(sums).all() else None


def _bad_timestamp(value: Any) -> str:
    return (
        f"usage_start_time: {short(value)} is not a timestamp "
        "(e.g. 2025-01-31 23:00:00 UTC or 2025-01-31T23:00:00Z)"
    )


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def resolve_columns(header: Iterable[str], where: str) -> dict[str, str]:
    """Map canonical keys to the names present; InputError naming what is missing."""
    present = {h.strip(): h for h in header}
    found: dict[str, str] = {}
    missing = []
    for key, names in COLUMNS.items():
        name = next((n for n in names if n in present), None)
        if name is not None:
            found[key] = present[name]
        elif key in REQUIRED:
            missing.append(f"{names[0]!r} (accepted names: {', '.join(names)})")
    if missing:
        raise InputError(f"missing column {'; missing column '.join(missing)}", where=where)
    return found


class _Builder(RowCounter):
    """Accumulates validated chunks of rows into arrays."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.projects = _Vocab(_or(NO_PROJECT))
        self.services = _Vocab(_required_text)
        self.skus = _Vocab(_or(NO_SKU))
        self.day_cache: dict[str, int] = {}
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.currencies: set[str] = set()

    def day_codes(self, values: Sequence[str]) -> list[int | None]:
        cache = self.day_cache
        days = list(map(cache.get, values))
        if None in days:
            for i, d in enumerate(days):
                if d is None:
                    value = values[i]
                    try:
                        d = parse_day(value)
                    except (ValueError, TypeError):
                        continue
                    cache[value] = d
                    days[i] = d
        return days

    def add(
        self,
        lines: Sequence[int],
        service: Sequence[Any],
        sku: Sequence[Any],
        start: Sequence[Any],
        project: Sequence[Any],
        cost: Sequence[Any],
        credit: Sequence[Any] | np.ndarray | None,
        currency: Sequence[Any] | None,
        early: Sequence[tuple[int, str]] = (),
    ) -> None:
        """Validate one chunk column-wise; rows failing any check are counted and dropped.

        Text columns may come as :class:`Factor` (distinct values and an index per row), cost
        and credits as float64 arrays already checked. ``early``: (line, reason) of the chunk's
        rows rejected before validation (unparsable, wrong shape); bad rows are listed in line
        order whatever the chunks."""
        n = len(lines)
        self.rows += n + len(early)
        reasons: dict[int, str] = {}

        # Fast path first: whole-column conversions; only a failing column is walked row by row.
        try:
            if isinstance(cost, np.ndarray) and cost.dtype == np.float64:
                costs = cost
            else:
                costs = np.array(cost, dtype=np.float64)
            if not np.isfinite(costs).all():
                raise ValueError
        except (ValueError, TypeError):
            costs = np.zeros(n)
            for i, value in enumerate(cost):
                try:
                    costs[i] = _finite(float(value))
                except (ValueError, TypeError):
                    reasons.setdefault(i, f"cost: {short(value)} is not a number")

        if isinstance(credit, np.ndarray):
            credits = credit
        else:
            credits = np.zeros(n)
            if credit is not None:
                self._credits(credit, credits, reasons)

        if isinstance(start, Factor):
            unique_days = self.day_codes(start.values)
            bad_days = [i for i, d in enumerate(unique_days) if d is None]
            day_array = np.array([0 if d is None else d for d in unique_days], dtype=np.int64)[start.index]
            if bad_days:
                for i in np.flatnonzero(np.isin(start.index, bad_days)).tolist():
                    reasons.setdefault(i, _bad_timestamp(start[i]))
        else:
            days = self.day_codes(start)
            if None in days:
                for i, d in enumerate(days):
                    if d is None:
                        reasons.setdefault(i, _bad_timestamp(start[i]))
                        days[i] = 0
            day_array = np.array(days, dtype=np.int64)

        codes = {}
        for key, vocab, values in (
            ("service.description", self.services, service),
            ("project.id", self.projects, project),
            ("sku.description", self.skus, sku),
        ):
            if isinstance(values, Factor):
                encoded = vocab.encode(values.values)[values.index]
            else:
                encoded = vocab.encode(values)
            if (encoded < 0).any():
                for i in np.nonzero(encoded < 0)[0]:
                    reasons.setdefault(
                        int(i), f"{key}: {short(values[i])} is empty, not text or holds control characters"
                    )
            codes[key] = encoded
        if currency is not None:
            distinct = currency.values if isinstance(currency, Factor) else set(currency)
            self.currencies.update(c for c in distinct if isinstance(c, str) and c)

        if reasons or early:
            listed = sorted([*((lines[i], reason) for i, reason in reasons.items()), *early])
            for line, reason in listed:
                self.bad.add(line, reason)
        if not n:
            return
        if reasons:
            mask = np.ones(n, dtype=bool)
            mask[list(reasons)] = False
            if not mask.any():
                return
            day_array, costs, credits = day_array[mask], costs[mask], credits[mask]
            codes = {k: v[mask] for k, v in codes.items()}
        self.parts.append(
            (
                day_array,
                codes["project.id"],
                codes["service.description"],
                codes["sku.description"],
                costs,
                credits,
            )
        )

    @staticmethod
    def _credits(values: Sequence[Any], out: np.ndarray, reasons: dict[int, str]) -> None:
        if values and type(values[0]) is list:
            sums = credit_sums(values)
            if sums is not None:
                out[:] = sums
                return
        loads = json.loads
        for i, value in enumerate(values):
            if value == "[]" or value == "" or value is None:
                continue
            try:
                # fast path for the export's own shape: [{"name": ..., "amount": -1.2, ...}]
                if isinstance(value, str) and value[0] == "[":
                    amounts = [item["amount"] for item in loads(value)]
                elif isinstance(value, list):
                    amounts = [item["amount"] for item in value]
                else:
                    raise TypeError
                if bool in set(map(type, amounts)):
                    raise TypeError  # true is no amount (credits_amount says so)
                amount = sum(amounts) + 0.0
                if not math.isfinite(amount):
                    raise ValueError
            except (ValueError, TypeError, KeyError, IndexError):
                try:
                    amount = credits_amount(value)
                except (ValueError, TypeError):
                    reasons.setdefault(i, f"credits: {short(value)} is not a credit list or number")
                    continue
            out[i] = amount

    def build(self, max_bad_share: float, *, default_currency: str = "USD") -> BillingData:
        self.bad.check(self.rows, max_bad_share)
        if len(self.currencies) > 1:
            shown = ", ".join(excerpt(c) for c in sorted(self.currencies)[:3])
            more = f" and {len(self.currencies) - 3} more" if len(self.currencies) > 3 else ""
            raise InputError(
                f"rows in {len(self.currencies)} currencies ({shown}{more}); analyze one "
                "billing account (one currency) at a time",
                where=self.source,
            )
        cols = [np.concatenate([p[i] for p in self.parts]) for i in range(6)]
        return BillingData(
            day=cols[0],
            project=cols[1],
            service=cols[2],
            sku=cols[3],
            cost=cols[4],
            credits=cols[5],
            project_names=self.projects.names,
            service_names=self.services.names,
            sku_names=self.skus.names,
            currency=next(iter(self.currencies), default_currency),
            source=self.source,
            rows=self.rows,
            bad=self.bad,
        )


def read_billing_file(
    path: str | Path,
    *,
    max_bad_share: float,
    max_bytes: int = DEFAULT_MAX_BYTES,
    blocks: bool = True,
    engine: str | None = None,
) -> BillingData:
    """Read a CSV or JSON-lines export (``.gz`` allowed); the format follows the extension,
    else the first character (``{`` means JSON lines). The file must be a regular file of at most
    ``max_bytes`` (decompressed too) in UTF-8; InputError naming the file and line otherwise.

    Plain blocks of lines are parsed in bulk (:mod:`.blocks`), any other block row by row;
    ``blocks=False`` reads every row on its own (the reference the bulk parsers are held to).

    ``engine`` (else ``ORCHESTRA_COST_ENGINE``): ``auto`` reads a plain local file of at least
    ``local_engine.ENGINE_MIN_BYTES`` with DuckDB when it is installed (:mod:`.local_engine`;
    same rows and values), ``pure`` never does, ``duckdb`` requires it (any size). Any file the
    engine cannot read exactly is read here."""
    name = str(path)
    choice = _engine(engine) if blocks else "pure"
    if choice != "pure":
        from .local_engine import ENGINE_MIN_BYTES, read_with_duckdb

        read = read_with_duckdb(
            path, source=name, max_bytes=max_bytes, min_bytes=ENGINE_MIN_BYTES if choice == "auto" else 0
        )
        if read is not None:
            return read.build(max_bad_share)
    suffixes = [s.lower() for s in Path(name).suffixes if s.lower() != ".gz"]
    with open_blocks(path, max_bytes=max_bytes) as stream:
        if suffixes and suffixes[-1] in {".jsonl", ".json", ".ndjson"}:
            is_jsonl = True
        elif suffixes and suffixes[-1] == ".csv":
            is_jsonl = False
        else:
            first = next(stream, None)
            is_jsonl = first is not None and first[1].startswith("{")
            stream = chain([first], stream) if first is not None else iter(())
        reader = _read_jsonl if is_jsonl else _read_csv
        # Creating a million small objects triggers the cyclic GC over and over for nothing (rows
        # hold only strings, numbers and acyclic records); pausing it halves the parse time.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            builder = reader(stream, name, blocks)
        finally:
            if was_enabled:
                gc.enable()
    return builder.build(max_bad_share)


def _engine(engine: str | None) -> str:
    """The engine to try: ``pure`` where DuckDB is not installed (as in the Cloud Functions),
    found without importing it."""
    from .local_engine import chosen_engine, duckdb_installed

    choice = chosen_engine(engine)
    return "pure" if choice == "auto" and not duckdb_installed() else choice


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "new-line character" in text:
        # A bare carriage return: lines must end in \n (or \r\n).
        return "carriage return inside an unquoted field; expected lines ending in \\n or \\r\\n"
    return f"not valid CSV: {text}"


class _Lines:
    """The lines handed to the csv module, a block at a time: each physical line as one item
    ending in ``\n`` (``\r\n`` as ``\n``), so that ``line`` is the number of the last line
    handed out. Past the loaded block it loads the next one itself (a quoted field may span
    blocks)."""

    def __init__(self, blocks: Iterator[tuple[int, str]]) -> None:
        self.blocks = blocks
        self.items: list[str] = []
        self.position = 0
        self.line = 0

    def load(self, first: int, block: str) -> None:
        self.items = io.StringIO(csv_text(block), newline="\n").readlines()
        self.position = 0
        self.line = first - 1

    @property
    def pending(self) -> bool:
        return self.position < len(self.items)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.position == len(self.items):
            block = next(self.blocks, None)
            if block is None:
                raise StopIteration
            self.load(*block)
        item = self.items[self.position]
        self.position += 1
        self.line += 1
        return item


def _read_csv(stream: Iterator[tuple[int, str]], source: str, blocks: bool = True) -> _Builder:
    builder = _Builder(source)
    lines = _Lines(stream)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("empty file (expected a header row)", where=source) from None
    except csv.Error as exc:
        raise InputError(_csv_problem(exc), where=f"{source}:{lines.line}") from None
    cols = resolve_columns(header, source)
    index = {name.strip(): i for i, name in enumerate(header)}
    width = len(header)
    take = {key: itemgetter(index[name.strip()]) for key, name in cols.items()}
    at = {key: index[name.strip()] for key, name in cols.items()}

    def column(rows: list[list[str]], key: str) -> list[str] | None:
        getter = take.get(key)
        return list(map(getter, rows)) if getter else None

    def rows_of_loaded() -> None:
        """Row by row, the records that start in the loaded block (the last may run on)."""
        chunk: list[list[str]] = []
        numbers: list[int] = []
        early: list[tuple[int, str]] = []
        while lines.pending:
            start = lines.line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise InputError(_csv_problem(exc), where=f"{source}:{lines.line}") from None
            if len(row) == width:
                chunk.append(row)
                numbers.append(start)
            elif row:  # blank lines are not rows
                early.append((start, f"{len(row)} fields, expected {width}"))
            if len(chunk) >= CHUNK:
                add(chunk, numbers, early)
                chunk, numbers, early = [], [], []
        if chunk or early:
            add(chunk, numbers, early)

    def add(chunk: list[list[str]], numbers: list[int], early: list[tuple[int, str]]) -> None:
        builder.add(
            numbers,
            column(chunk, "service") or [],
            column(chunk, "sku") or [NO_SKU] * len(chunk),
            column(chunk, "start") or [],
            column(chunk, "project") or [],
            column(chunk, "cost") or [],
            column(chunk, "credits"),
            column(chunk, "currency"),
            early,
        )

    if blocks and lines.pending:  # the rest of the header's block
        rest = "".join(lines.items[lines.position :])
        if _csv_fast(builder, lines.line + 1, rest, width, at):
            lines.position = len(lines.items)
    while True:
        if lines.pending:
            rows_of_loaded()
            continue
        block = next(stream, None)
        if block is None:
            break
        if not (blocks and _csv_fast(builder, *block, width, at)):
            lines.load(*block)
    return builder


def _csv_fast(builder: _Builder, first: int, block: str, width: int, at: dict[str, int]) -> bool:
    """Add a block of plain CSV lines at once; False (nothing added) for any other block."""
    parsed = csv_block(csv_text(block), width)
    if parsed is None:
        return False
    costs = parsed.numbers(at["cost"])
    if costs is None:
        return False
    credits = np.zeros(parsed.rows)
    if "credits" in at:
        column = at["credits"]
        widths = parsed.ends[:, column] - parsed.starts[:, column]
        # Most rows have no credit: an empty field or an empty list.
        empty = (widths == 0) | (
            (widths == 2)
            & (parsed.buf[parsed.starts[:, column]] == ord("["))
            & (parsed.buf[parsed.starts[:, column] + 1] == ord("]"))
        )
        listed = np.flatnonzero(~empty)
        if len(listed):
            sums = _credit_texts(parsed.texts(column, listed))
            if sums is None:
                return False
            credits[listed] = sums
    factors = {}
    for key in ("service", "sku", "start", "project", "currency"):
        if key in at:
            factor = parsed.factor(at[key])
            if factor is None:
                return False
            factors[key] = factor
    rows = parsed.rows
    builder.add(
        range(first, first + rows),
        factors["service"],
        factors.get("sku") or Factor([NO_SKU], np.zeros(rows, dtype=np.intp)),
        factors["start"],
        factors["project"],
        costs,
        credits,
        factors.get("currency"),
    )
    return True


def _credit_texts(texts: list[str]) -> np.ndarray | None:
    """Credit sums of CSV credit fields that all hold the export's JSON list of credit records;
    None when any holds something else (the block is then read row by row)."""
    import orjson  # only the bulk readers need it

    if not all(text.startswith("[") for text in texts):
        return None
    try:
        parsed = list(map(orjson.loads, texts))
    except orjson.JSONDecodeError:
        return None
    return credit_sums(parsed)


class _Rejects(RowCounter):
    """Rows rejected before validation, held until their chunk is added (line order)."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.held: list[tuple[int, str]] = []

    def reject(self, line: int, reason: str) -> None:
        self.held.append((line, reason))


def _lookup(record: dict[str, Any], names: tuple[str, ...]) -> tuple[bool, Any]:
    for name in names:
        if name in record:
            return True, record[name]
        if "." in name:
            head, _, tail = name.partition(".")
            inner = record.get(head)
            if isinstance(inner, dict) and tail in inner:
                return True, inner[tail]
    return False, None


_JSON_KEYS = ("service", "sku", "start", "project", "cost", "credits", "currency")


def _read_jsonl(stream: Iterator[tuple[int, str]], source: str, blocks: bool = True) -> _Builder:
    builder = _Builder(source)
    rejects = _Rejects(source)
    batch: dict[str, list[Any]] = {k: [] for k in _JSON_KEYS}
    lines: list[int] = []
    missing_seen: dict[str, int] = {}

    def flush() -> None:
        if lines or rejects.held:
            builder.add(
                lines[:],
                batch["service"],
                batch["sku"],
                batch["start"],
                batch["project"],
                batch["cost"],
                batch["credits"],
                batch["currency"],
                rejects.held[:],
            )
        for values in (*batch.values(), lines, rejects.held):
            values.clear()

    for first, block in stream:
        if blocks and _jsonl_fast(builder, first, block):
            continue
        texts = block.split("\n")
        if block.endswith("\n"):
            texts.pop()
        numbered = ((n, text.removesuffix("\r")) for n, text in enumerate(texts, first))
        for number, record in json_objects(numbered, rejects):
            values = {}
            absent = None
            for key in _JSON_KEYS:
                ok, value = _lookup(record, COLUMNS[key])
                if not ok and key in REQUIRED:
                    absent = key
                    break
                values[key] = value
            if absent is not None:
                missing_seen.setdefault(absent, number)
                names = COLUMNS[absent]
                rejects.reject(number, f"missing field {names[0]!r} (accepted names: {', '.join(names)})")
                continue
            for key in _JSON_KEYS:
                batch[key].append(values[key])
            lines.append(number)
            if len(lines) >= CHUNK:
                flush()
        flush()
    if builder.rows and builder.bad.count == builder.rows and missing_seen:
        # Every row lacks the same field: that is a missing column, say it that way.
        key = min(missing_seen, key=missing_seen.__getitem__)
        names = COLUMNS[key]
        raise InputError(f"missing column {names[0]!r} (accepted names: {', '.join(names)})", where=source)
    return builder


def _jsonl_fast(builder: _Builder, first: int, block: str) -> bool:
    """Add a block of JSON lines of one layout at once; False (nothing added) for any other."""
    records = json_records(block)
    if records is None:
        return False
    keys: set[str] = set().union(*records)
    columns = {}
    for key in _JSON_KEYS:
        values = json_column(records, keys, COLUMNS[key], required=key in REQUIRED)
        if values is None:
            return False
        columns[key] = values
    builder.add(
        range(first, first + len(records)),
        columns["service"],
        columns["sku"],
        columns["start"],
        columns["project"],
        columns["cost"],
        columns["credits"],
        columns["currency"],
    )
    return True


# ---------------------------------------------------------------------------------------------
# BigQuery: the standard usage cost export table, aggregated in SQL to day/project/service/SKU.

BIGQUERY_SQL = """
SELECT
  DATE(usage_start_time) AS day,
  project.id AS project_id,
  service.description AS service,
  sku.description AS sku,
  currency,
  SUM(cost) AS cost,
  SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) AS c), 0)) AS credits,
  COUNT(*) AS row_count
FROM `{table}`
WHERE _PARTITIONTIME >= TIMESTAMP(@partition_start)
  AND usage_start_time >= TIMESTAMP(@start)
  AND usage_start_time < TIMESTAMP(@end)
GROUP BY day, project_id, service, sku, currency
ORDER BY day
"""


def bigquery_sql(table: str) -> str:
    # Table ids cannot be query parameters; validate instead of interpolating blindly.
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:")
    if not table or not set(table) <= allowed or table.count(".") != 2:
        raise InputError(
            f"{table!r} is not a table id; expected PROJECT.DATASET.gcp_billing_export_v1_ACCOUNT",
            where="automations.cost.settings.bigquery.table",
        )
    return BIGQUERY_SQL.format(table=table)


def read_bigquery(
    settings: BigQuerySettings,
    *,
    start: dt.date,
    end: dt.date,
    client: Any = None,
) -> BillingData:
    """Aggregate ``[start, end)`` from the export table. ``client`` is a
    ``google.cloud.bigquery.Client`` (injected in tests); created from ADC when None."""
    from google.cloud import bigquery

    if client is None:
        client = bigquery.Client(project=settings.job_project, location=settings.location)
    # Rows land in ingestion-time partitions up to a few days after usage (late data, credits):
    # scan a little before ``start`` so that nothing in the window is missed.
    partition_start = start - dt.timedelta(days=settings.partition_slack_days)
    job_config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("partition_start", "DATE", partition_start),
            bigquery.ScalarQueryParameter("start", "DATE", start),
            bigquery.ScalarQueryParameter("end", "DATE", end),
        ],
        maximum_bytes_billed=settings.maximum_bytes_billed,
        labels={"orchestra-automation": "cost"},
    )
    job = client.query(bigquery_sql(settings.table), job_config=job_config, location=settings.location)
    return billing_from_rows(job.result(), source=f"bigquery:{settings.table}")


def billing_from_rows(rows: Iterable[Any], *, source: str) -> BillingData:
    """Aggregated BigQuery rows (``Row`` objects or mappings) -> BillingData."""
    builder = _Builder(source)
    day: list[Any] = []
    project: list[Any] = []
    service: list[Any] = []
    sku: list[Any] = []
    currency: list[Any] = []
    cost: list[Any] = []
    credit: list[Any] = []
    for row in _rows(rows):
        value = row["day"]
        day.append(value.isoformat() if isinstance(value, dt.date) else value)
        project.append(row["project_id"])
        service.append(row["service"])
        sku.append(row["sku"])
        currency.append(row["currency"])
        cost.append(row["cost"])
        credit.append(row["credits"] or 0.0)
    if not day:
        raise InputError("the export table has no rows in the requested window", where=source)
    builder.add(range(1, len(day) + 1), service, sku, day, project, cost, credit, currency)
    return builder.build(max_bad_share=0.0)


def _rows(rows: Iterable[Any]) -> Iterator[Any]:
    yield from rows
