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
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import InputError
from ...inputs import DEFAULT_MAX_BYTES, excerpt
from ...toolkit.rows import BadRows, RowCounter, is_name, json_objects, open_lines, short

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
        credit: Sequence[Any] | None,
        currency: Sequence[Any] | None,
    ) -> None:
        """Validate one chunk column-wise; rows failing any check are counted and dropped."""
        n = len(lines)
        self.rows += n
        reasons: dict[int, str] = {}

        # Fast path first: whole-column conversions; only a failing column is walked row by row.
        try:
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

        credits = np.zeros(n)
        if credit is not None:
            self._credits(credit, credits, reasons)

        days = self.day_codes(start)
        if None in days:
            for i, d in enumerate(days):
                if d is None:
                    reasons.setdefault(
                        i,
                        f"usage_start_time: {short(start[i])} is not a timestamp "
                        "(e.g. 2025-01-31 23:00:00 UTC or 2025-01-31T23:00:00Z)",
                    )
                    days[i] = 0

        codes = {}
        for key, vocab, values in (
            ("service.description", self.services, service),
            ("project.id", self.projects, project),
            ("sku.description", self.skus, sku),
        ):
            encoded = vocab.encode(values)
            if (encoded < 0).any():
                for i in np.nonzero(encoded < 0)[0]:
                    reasons.setdefault(
                        int(i), f"{key}: {short(values[i])} is empty, not text or holds control characters"
                    )
            codes[key] = encoded
        if currency is not None:
            self.currencies.update(c for c in set(currency) if isinstance(c, str) and c)

        day_array = np.array(days, dtype=np.int64)
        if reasons:
            for i in sorted(reasons):
                self.bad.add(lines[i], reasons[i])
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
        loads = json.loads
        for i, value in enumerate(values):
            if value == "[]" or value == "" or value is None:
                continue
            try:
                # fast path for the export's own shape: [{"name": ..., "amount": -1.2, ...}]
                if isinstance(value, str) and value[0] == "[":
                    amount = sum(item["amount"] for item in loads(value)) + 0.0
                elif isinstance(value, list):
                    amount = sum(item["amount"] for item in value) + 0.0
                else:
                    raise TypeError
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
    path: str | Path, *, max_bad_share: float, max_bytes: int = DEFAULT_MAX_BYTES
) -> BillingData:
    """Read a CSV or JSON-lines export (``.gz`` allowed); the format follows the extension,
    else the first character (``{`` means JSON lines). The file must be a regular file of at most
    ``max_bytes`` (decompressed too) in UTF-8; InputError naming the file and line otherwise."""
    name = str(path)
    suffixes = [s.lower() for s in Path(name).suffixes if s.lower() != ".gz"]
    with open_lines(path, max_bytes=max_bytes) as lines:
        if suffixes and suffixes[-1] in {".jsonl", ".json", ".ndjson"}:
            builder = _read_jsonl(lines, name)
        elif suffixes and suffixes[-1] == ".csv":
            builder = _read_csv(lines, name)
        else:
            first = next(lines, None)
            rest = chain([first], lines) if first is not None else iter(())
            is_jsonl = first is not None and first[1].startswith("{")
            builder = _read_jsonl(rest, name) if is_jsonl else _read_csv(rest, name)
    return builder.build(max_bad_share)


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "new-line character" in text:
        # A bare carriage return: lines must end in \n (or \r\n).
        return "carriage return inside an unquoted field; expected lines ending in \\n or \\r\\n"
    return f"not valid CSV: {text}"


def _read_csv(lines: Iterable[tuple[int, str]], source: str) -> _Builder:
    builder = _Builder(source)
    # The csv module counts the lines it is given: one item per physical line, so its line_num
    # is the file's line number. The line break goes back on for fields quoted across lines.
    reader = csv.reader(text + "\n" for _, text in lines)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("empty file (expected a header row)", where=source) from None
    except csv.Error as exc:
        raise InputError(_csv_problem(exc), where=f"{source}:{reader.line_num}") from None
    cols = resolve_columns(header, source)
    index = {name.strip(): i for i, name in enumerate(header)}
    width = len(header)
    take = {key: itemgetter(index[name.strip()]) for key, name in cols.items()}

    def column(rows: list[list[str]], key: str) -> list[str] | None:
        getter = take.get(key)
        return list(map(getter, rows)) if getter else None

    # Creating a million small lists triggers the cyclic GC over and over for nothing (rows hold
    # only strings); pausing it halves the parse time.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        line = 1
        while True:
            try:
                chunk = list(islice(reader, CHUNK))
            except csv.Error as exc:
                raise InputError(_csv_problem(exc), where=f"{source}:{reader.line_num}") from None
            if not chunk:
                break
            end_line = reader.line_num
            if end_line - line == len(chunk):
                lines: Sequence[int] = range(line + 1, end_line + 1)
            else:
                # A quoted field spans lines: number records, not physical lines, in this chunk.
                lines = range(line + 1, line + 1 + len(chunk))
            line = end_line
            if set(map(len, chunk)) != {width}:
                good_rows, good_lines = [], []
                for row, n in zip(chunk, lines, strict=True):
                    if len(row) == width:
                        good_rows.append(row)
                        good_lines.append(n)
                    elif row:  # blank lines are not rows
                        builder.reject(n, f"{len(row)} fields, expected {width}")
                chunk, lines = good_rows, good_lines
                if not chunk:
                    continue
            builder.add(
                lines,
                column(chunk, "service") or [],
                column(chunk, "sku") or [NO_SKU] * len(chunk),
                column(chunk, "start") or [],
                column(chunk, "project") or [],
                column(chunk, "cost") or [],
                column(chunk, "credits"),
                column(chunk, "currency"),
            )
    finally:
        if was_enabled:
            gc.enable()
    return builder


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


def _read_jsonl(numbered: Iterable[tuple[int, str]], source: str) -> _Builder:
    builder = _Builder(source)
    batch: dict[str, list[Any]] = {k: [] for k in ("service", "sku", "start", "project", "cost")}
    credit: list[Any] = []
    currency: list[Any] = []
    lines: list[int] = []
    missing_seen: dict[str, int] = {}

    def flush() -> None:
        if lines:
            builder.add(
                lines[:],
                batch["service"],
                batch["sku"],
                batch["start"],
                batch["project"],
                batch["cost"],
                credit,
                currency,
            )
        for values in (*batch.values(), credit, currency, lines):
            values.clear()

    for number, record in json_objects(numbered, builder):
        values = {}
        absent = None
        for key in ("service", "sku", "start", "project", "cost", "credits", "currency"):
            ok, value = _lookup(record, COLUMNS[key])
            if not ok and key in REQUIRED:
                absent = key
                break
            values[key] = value
        if absent is not None:
            missing_seen.setdefault(absent, number)
            names = COLUMNS[absent]
            builder.reject(number, f"missing field {names[0]!r} (accepted names: {', '.join(names)})")
            continue
        for key in batch:
            batch[key].append(values[key])
        credit.append(values["credits"])
        currency.append(values["currency"])
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
