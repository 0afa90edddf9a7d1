"""CSV metric files: header ``timestamp,value`` (the Numenta Anomaly Benchmark format), one
metric per file.

Every rejected file raises :class:`InputError` naming the file and line, saying what was wrong and
what is accepted. Timestamps are ISO 8601 (``2014-02-14 14:30:00``, ``2014-02-14T14:30:00Z``,
``...+02:00``); naive timestamps are UTC. Rows must be strictly increasing in time.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import FILE_METRICS, PERCENT_METRICS, MetricSeries, MetricsSource, to_ms

HEADER = ("timestamp", "value")


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def read_series(path: str | Path, name: str) -> MetricSeries:
    """Read and validate one CSV series."""
    if name not in FILE_METRICS:
        raise InputError(
            f"unknown metric {name!r}; accepted: {', '.join(FILE_METRICS)}", where=f"--metric {name}"
        )
    p = Path(path)
    where = str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", where=where) from None
    except IsADirectoryError:
        raise InputError("is a directory; expected a CSV file", where=where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=where) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text; expected a CSV file", where=f"{where}:{line}") from None
    lines = text.splitlines()
    if not lines or not any(line.strip() for line in lines):
        raise InputError(
            "empty file; expected a header 'timestamp,value' and one sample per line", where=f"{where}:1"
        )
    header = tuple(part.strip().lower() for part in lines[0].split(","))
    if header != HEADER:
        raise InputError(
            f"missing header: expected 'timestamp,value', found {lines[0][:80]!r}", where=f"{where}:1"
        )
    percent = name in PERCENT_METRICS
    times: list[int] = []
    values: list[float] = []
    line_of: list[int] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 2:
            raise InputError(
                f"expected 2 fields 'timestamp,value', found {len(parts)}: {line[:80]!r}",
                where=f"{where}:{number}",
            )
        stamp, number_text = parts[0].strip(), parts[1].strip()
        try:
            when = _parse_time(stamp)
        except ValueError:
            raise InputError(
                f"bad timestamp {stamp[:40]!r}; accepted: ISO 8601 such as '2014-02-14 14:30:00' "
                "or '2014-02-14T14:30:00Z'",
                where=f"{where}:{number}",
            ) from None
        try:
            value = float(number_text)
        except ValueError:
            raise InputError(
                f"non-numeric value {number_text[:40]!r}; expected a number", where=f"{where}:{number}"
            ) from None
        if not math.isfinite(value):
            raise InputError(f"value {number_text!r} is not a finite number", where=f"{where}:{number}")
        if value < 0 or (percent and value > 100):
            accepted = "a percentage from 0 to 100" if percent else "a number >= 0"
            raise InputError(
                f"{name} value {value:g} out of range; expected {accepted}", where=f"{where}:{number}"
            )
        ms = to_ms(when)
        if times and ms <= times[-1]:
            kind = "duplicate" if ms == times[-1] else "out-of-order"
            raise InputError(
                f"{kind} timestamp {stamp!r} (previous sample on line {line_of[-1]}); "
                "rows must be strictly increasing in time",
                where=f"{where}:{number}",
            )
        times.append(ms)
        values.append(value)
        line_of.append(number)
    if not times:
        raise InputError(
            "no samples after the header; expected one 'timestamp,value' row per line", where=f"{where}:2"
        )
    return MetricSeries(name, np.asarray(times, dtype=np.int64), np.asarray(values, dtype=np.float64), where)


class FileMetricsSource(MetricsSource):
    kind = "files"

    def __init__(self, paths: Mapping[str, str], *, label: str | None = None) -> None:
        for name in paths:
            if name not in FILE_METRICS:
                raise InputError(
                    f"unknown metric {name!r}; accepted: {', '.join(FILE_METRICS)}", where=f"--metric {name}"
                )
        self.paths = {name: str(path) for name, path in paths.items()}
        self.label = label

    def describe(self) -> str:
        if self.label:
            files = ", ".join(f"{name}={Path(path).name}" for name, path in self.paths.items())
            return f"{self.label}: {files}"
        files = ", ".join(f"{name}={path}" for name, path in self.paths.items())
        return f"metric files: {files}"

    def available(self) -> tuple[str, ...]:
        return tuple(self.paths)

    def fetch(
        self,
        service: str,
        metrics: Sequence[str],
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> dict[str, MetricSeries]:
        out: dict[str, MetricSeries] = {}
        for name in metrics:
            path = self.paths.get(name)
            if path is None:
                continue
            series = read_series(path, name)
            if start is not None or end is not None:
                series = series.between(
                    None if start is None else to_ms(start), None if end is None else to_ms(end)
                )
            out[name] = series
        return out

    def spec(self) -> dict[str, object]:
        return {"type": self.kind, "paths": dict(self.paths), "label": self.label}
