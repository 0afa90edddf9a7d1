"""CSV metric files: header ``timestamp,value`` (the Numenta Anomaly Benchmark format), one
metric per file.

Every rejected file raises :class:`InputError` naming the file and line, saying what was wrong and
what is accepted. Timestamps are ISO 8601 (``2014-02-14 14:30:00``, ``2014-02-14T14:30:00Z``,
``...+02:00``); naive timestamps are UTC. Rows must be strictly increasing in time.
"""

from __future__ import annotations

import datetime as dt
import math
from array import array
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..inputs import DEFAULT_MAX_BYTES, excerpt, open_input, text_lines
from .base import FILE_METRICS, PERCENT_METRICS, MetricSeries, MetricsSource, to_ms

HEADER = ("timestamp", "value")


def _parse_time(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 timestamp (naive means UTC)."""
    value = dt.datetime.fromisoformat(text)
    return to_ms(value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value)


def _open_lines(
    path: str | Path, max_bytes: int, chunk_bytes: int = 1 << 20
) -> tuple[Any, Iterator[tuple[int, str]], str]:
    where = str(path)
    reader = open_input(path, max_bytes=max_bytes, where=where)
    return reader, text_lines(reader, where, chunk_bytes=chunk_bytes), where


def _check_header(lines: Iterator[tuple[int, str]], where: str) -> None:
    for number, line in lines:
        if not line.strip():
            continue
        header = tuple(part.strip().lower() for part in line.split(","))
        if header != HEADER:
            raise InputError(
                f"missing header: expected 'timestamp,value', found {excerpt(line)}",
                where=f"{where}:{number}",
            )
        return
    raise InputError(
        "empty file; expected a header 'timestamp,value' and one sample per line", where=f"{where}:1"
    )


def check_series_file(path: str | Path, name: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Cheap check before a run is recorded: a readable regular file within the size limit
    whose first line is the header. The samples are read once, by the run."""
    _check_name(name)
    reader, lines, where = _open_lines(path, max_bytes, chunk_bytes=4096)
    with reader:
        _check_header(lines, where)


def _check_name(name: str, names: Sequence[str] = FILE_METRICS) -> None:
    if name not in names:
        raise InputError(f"unknown metric {name!r}; accepted: {', '.join(names)}", where=f"--metric {name}")


def read_series(
    path: str | Path,
    name: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    names: Sequence[str] = FILE_METRICS,
) -> MetricSeries:
    """Read and validate one CSV series, streaming: memory grows with the samples kept (16
    bytes each), not with the file. ``names``: the metric names the caller accepts (an
    automation may read more than the shared ones; values outside PERCENT_METRICS are >= 0)."""
    _check_name(name, names)
    reader, lines, where = _open_lines(path, max_bytes)
    percent = name in PERCENT_METRICS
    upper = 100.0 if percent else math.inf
    accepted = "a percentage from 0 to 100" if percent else "a number >= 0"
    times = array("q")
    values = array("d")
    previous_ms = -(2**63)
    previous_line = 0
    parse_time = _parse_time
    with reader:
        _check_header(lines, where)
        for number, line in lines:
            stamp, sep, number_text = line.partition(",")
            if not sep or "," in number_text:
                if not line.strip():
                    continue
                raise InputError(
                    f"expected 2 fields 'timestamp,value', found {line.count(',') + 1}: {excerpt(line)}",
                    where=f"{where}:{number}",
                )
            try:
                ms = parse_time(stamp.strip())
            except (ValueError, OverflowError):
                raise InputError(
                    f"bad timestamp {excerpt(stamp.strip())}; accepted: ISO 8601 such as "
                    "'2014-02-14 14:30:00' or '2014-02-14T14:30:00Z'",
                    where=f"{where}:{number}",
                ) from None
            try:
                value = float(number_text)
            except ValueError:
                raise InputError(
                    f"non-numeric value {excerpt(number_text.strip())}; expected a number",
                    where=f"{where}:{number}",
                ) from None
            if not 0 <= value <= upper:
                if not math.isfinite(value):
                    raise InputError(
                        f"value {excerpt(number_text.strip())} is not a finite number",
                        where=f"{where}:{number}",
                    )
                raise InputError(
                    f"{name} value {value:g} out of range; expected {accepted}", where=f"{where}:{number}"
                )
            if ms <= previous_ms:
                kind = "duplicate" if ms == previous_ms else "out-of-order"
                raise InputError(
                    f"{kind} timestamp {excerpt(stamp.strip())} (previous sample on line {previous_line}); "
                    "rows must be strictly increasing in time",
                    where=f"{where}:{number}",
                )
            times.append(ms)
            values.append(value)
            previous_ms, previous_line = ms, number
    if not times:
        raise InputError(
            "no samples after the header; expected one 'timestamp,value' row per line", where=f"{where}:2"
        )
    # Views over the arrays' buffers: no copy of the samples.
    return MetricSeries(
        name, np.frombuffer(times, dtype=np.int64), np.frombuffer(values, dtype=np.float64), where
    )


class FileMetricsSource(MetricsSource):
    kind = "files"

    def __init__(
        self, paths: Mapping[str, str], *, label: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        for name in paths:
            if name not in FILE_METRICS:
                raise InputError(
                    f"unknown metric {name!r}; accepted: {', '.join(FILE_METRICS)}", where=f"--metric {name}"
                )
        self.paths = {name: str(path) for name, path in paths.items()}
        self.label = label
        self.max_bytes = max_bytes

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
            series = read_series(path, name, max_bytes=self.max_bytes)
            if start is not None or end is not None:
                series = series.between(
                    None if start is None else to_ms(start), None if end is None else to_ms(end)
                )
            out[name] = series
        return out

    def spec(self) -> dict[str, object]:
        return {
            "type": self.kind,
            "paths": dict(self.paths),
            "label": self.label,
            "max_bytes": self.max_bytes,
        }
