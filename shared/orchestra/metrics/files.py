"""CSV metric files: header ``timestamp,value`` (the Numenta Anomaly Benchmark format), one
metric per file.

Every rejected file raises :class:`InputError` naming the file and line, saying what was wrong and
what is accepted. Timestamps are ISO 8601 (``2014-02-14 14:30:00``, ``2014-02-14T14:30:00Z``,
``...+02:00``); naive timestamps are UTC. Rows must be strictly increasing in time.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..inputs import DEFAULT_MAX_BYTES, excerpt, open_input, text_blocks, text_lines
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


def _header_problem(line: str, number: int, where: str) -> InputError | None:
    header = tuple(part.strip().lower() for part in line.split(","))
    if header != HEADER:
        return InputError(
            f"missing header: expected 'timestamp,value', found {excerpt(line)}",
            where=f"{where}:{number}",
        )
    return None


def _empty_file(where: str) -> InputError:
    return InputError(
        "empty file; expected a header 'timestamp,value' and one sample per line", where=f"{where}:1"
    )


def _check_header(lines: Iterator[tuple[int, str]], where: str) -> None:
    for number, line in lines:
        if not line.strip():
            continue
        problem = _header_problem(line, number, where)
        if problem is not None:
            raise problem
        return
    raise _empty_file(where)


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


# The common row, read a block at a time with numpy: "YYYY-MM-DD HH:MM:SS" (or a T between date
# and time, and/or a Z after it), a comma, a number. Any other row sends its block to the
# line-by-line reader, which accepts every ISO 8601 form and names what is wrong where.
_STAMP_CHARS = 19
_STAMP_OFFSETS = np.arange(_STAMP_CHARS)
_STAMP_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_MS_PER_DAY = 86_400_000


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (years >= 1), vectorised."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _stamps_ms(buf: np.ndarray, starts: np.ndarray, widths: np.ndarray) -> np.ndarray | None:
    """Epoch ms of the plain timestamps starting at ``starts`` (``widths`` characters each);
    None when any of them is another form (or no valid instant)."""
    zulu = widths == _STAMP_CHARS + 1
    if not ((widths == _STAMP_CHARS) | zulu).all():
        return None
    if zulu.any() and not (buf[starts[zulu] + _STAMP_CHARS] == ord("Z")).all():
        return None
    chars = buf[starts[:, None] + _STAMP_OFFSETS]
    dashes, colons, middle = chars[:, [4, 7]], chars[:, [13, 16]], chars[:, 10]
    if not (
        (dashes == ord("-")).all()
        and (colons == ord(":")).all()
        and ((middle == ord(" ")) | (middle == ord("T"))).all()
    ):
        return None
    digits = chars[:, _STAMP_DIGITS].astype(np.int64) - ord("0")
    if not ((digits >= 0) & (digits <= 9)).all():
        return None
    d = digits.T
    year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]
    month, day = d[4] * 10 + d[5], d[6] * 10 + d[7]
    hour, minute, second = d[8] * 10 + d[9], d[10] * 10 + d[11], d[12] * 10 + d[13]
    if not ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)).all():
        return None
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    if not (day <= _DAYS_IN_MONTH[month] + (leap & (month == 2))).all():
        return None
    if not ((hour <= 23) & (minute <= 59) & (second <= 59)).all():
        return None
    return _days_from_civil(year, month, day) * _MS_PER_DAY + (hour * 3600 + minute * 60 + second) * 1000


def _fast_block(block: str, previous_ms: int, upper: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The samples of a block of whole lines when every line is a common row, in time order after
    ``previous_ms``, its value within [0, upper]; None otherwise (the block is then read line
    by line, which names the first problem)."""
    if not block.isascii():
        return None
    if not block.endswith("\n"):
        block += "\n"
    buf = np.frombuffer(block.encode("ascii"), dtype=np.uint8)
    ends = np.flatnonzero(buf == ord("\n"))
    commas = np.flatnonzero(buf == ord(","))
    if len(commas) != len(ends):
        return None
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    # As many commas as lines, each line holding one: exactly one comma per line.
    if not ((commas > starts) & (commas < ends)).all():
        return None
    t_ms = _stamps_ms(buf, starts, commas - starts)
    if t_ms is None or t_ms[0] <= previous_ms or not (t_ms[1:] > t_ms[:-1]).all():
        return None
    # "stamp,value\n" * n -> [stamp, value] * n + [""]: the values are the odd items.
    texts = block.replace("\n", ",").split(",")[1::2]
    try:
        values = np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
    except ValueError:
        return None
    if not ((values >= 0) & (values <= upper)).all():
        return None
    return t_ms, values


class _Reading:
    """The state of one series being read: the samples so far and the last row's time/line.

    The samples go into arrays sized from the file's size and the first block's bytes per row,
    grown by a quarter when that was too few: no list of parts concatenated at the end, which
    would hold every sample twice."""

    def __init__(self, name: str, where: str, size_hint: int = 0) -> None:
        self.name = name
        self.where = where
        percent = name in PERCENT_METRICS
        self.upper = 100.0 if percent else math.inf
        self.accepted = "a percentage from 0 to 100" if percent else "a number >= 0"
        self.size_hint = size_hint
        self.t_ms = np.empty(0, dtype=np.int64)
        self.values = np.empty(0, dtype=np.float64)
        self.count = 0
        self.previous_ms = -(2**63)
        self.previous_line = 0

    def block(self, first: int, text: str) -> None:
        fast = _fast_block(text, self.previous_ms, self.upper)
        if fast is None:
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()
            self.lines(enumerate(lines, first))
            return
        self.keep(*fast, len(text))
        self.previous_ms = int(fast[0][-1])
        self.previous_line = first + len(fast[0]) - 1

    def lines(self, lines: Iterable[tuple[int, str]]) -> None:
        """Row by row: every ISO 8601 form, blank lines skipped, the first problem raised."""
        where, name, upper = self.where, self.name, self.upper
        times: list[int] = []
        values: list[float] = []
        previous_ms, previous_line = self.previous_ms, self.previous_line
        text = 0
        for number, raw in lines:
            text += len(raw) + 1
            line = raw.removesuffix("\r")
            stamp, sep, number_text = line.partition(",")
            if not sep or "," in number_text:
                if not line.strip():
                    continue
                raise InputError(
                    f"expected 2 fields 'timestamp,value', found {line.count(',') + 1}: {excerpt(line)}",
                    where=f"{where}:{number}",
                )
            try:
                ms = _parse_time(stamp.strip())
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
                    f"{name} value {value:g} out of range; expected {self.accepted}",
                    where=f"{where}:{number}",
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
        if times:
            self.keep(np.array(times, dtype=np.int64), np.array(values, dtype=np.float64), text)
        self.previous_ms, self.previous_line = previous_ms, previous_line

    def keep(self, t_ms: np.ndarray, values: np.ndarray, text_chars: int) -> None:
        """Append samples read from ``text_chars`` characters of the file."""
        end = self.count + len(t_ms)
        if end > len(self.t_ms):
            capacity = max(end, len(self.t_ms) + len(self.t_ms) // 4)
            if not len(self.t_ms) and self.size_hint > text_chars:
                # Rows of the rest of the file as long as these: a little over the whole count.
                capacity = max(capacity, int(self.size_hint * len(t_ms) / max(1, text_chars) * 1.02) + 64)
            self.t_ms = _grown(self.t_ms, capacity, self.count)
            self.values = _grown(self.values, capacity, self.count)
        self.t_ms[self.count : end] = t_ms
        self.values[self.count : end] = values
        self.count = end

    def series(self) -> MetricSeries:
        if not self.count:
            raise InputError(
                "no samples after the header; expected one 'timestamp,value' row per line",
                where=f"{self.where}:2",
            )
        t_ms, values = self.t_ms[: self.count], self.values[: self.count]
        if self.count < len(self.t_ms) * 7 // 8:  # far fewer rows than the size suggested
            t_ms, values = t_ms.copy(), values.copy()
        return MetricSeries(self.name, t_ms, values, self.where)


def _grown(array: np.ndarray, capacity: int, used: int) -> np.ndarray:
    grown = np.empty(capacity, dtype=array.dtype)
    grown[:used] = array[:used]
    return grown


def _after_header(first: int, block: str, where: str) -> tuple[int, str] | None:
    """(first line number, text) of what follows the header in ``block``; None when the block
    holds only blank lines. InputError when the first non-blank line is not the header."""
    start, number = 0, first
    while start < len(block):
        end = block.find("\n", start)
        end = len(block) if end < 0 else end + 1
        line = block[start:end].removesuffix("\n").removesuffix("\r")
        if line.strip():
            problem = _header_problem(line, number, where)
            if problem is not None:
                raise problem
            return number + 1, block[end:]
        start, number = end, number + 1
    return None


def read_series(
    path: str | Path,
    name: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    names: Sequence[str] = FILE_METRICS,
    chunk_bytes: int = 1 << 20,
) -> MetricSeries:
    """Read and validate one CSV series, read once in blocks of ``chunk_bytes``: memory grows with
    the samples kept (16 bytes each), not with the file. ``names``: the metric names the caller
    accepts (an automation may read more than the shared ones; values outside PERCENT_METRICS
    are >= 0)."""
    _check_name(name, names)
    where = str(path)
    header = False
    with open_input(path, max_bytes=max_bytes, where=where) as reader:
        reading = _Reading(name, where, size_hint=reader.size)
        for first, block in text_blocks(reader, where, chunk_bytes=chunk_bytes):
            if not header:
                rest = _after_header(first, block, where)
                if rest is None:
                    continue
                header = True
                first, block = rest
                if not block:
                    continue
            reading.block(first, block)
    if not header:
        raise _empty_file(where)
    return reading.series()


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
