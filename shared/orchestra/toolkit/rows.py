"""Bookkeeping for malformed input rows, shared by the file readers of cost and ai-services.

A reader keeps going past a bad row (one broken line must not hide a month of data) but counts
it, remembers where it was and why, and refuses the whole file when too much of it is broken:
then the numbers would be wrong rather than incomplete.

Input files are read through :mod:`orchestra.inputs` (:func:`open_lines`): a regular file within
the size limit, ``*.gz`` decompressed within the same limit, strict UTF-8. Reasons and errors
quote input only through ``excerpt``: a bounded, sanitized piece of the offending value.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..inputs import DEFAULT_MAX_BYTES, excerpt, open_input, text_lines
from ..models import Finding, Severity

MIB = 1024 * 1024
# A JSON-lines record longer than this is refused unparsed: one line must not cost gigabytes.
MAX_RECORD_CHARS = 8 * MIB
# A line longer than this ends the read before it is assembled: a file that is one endless line
# would otherwise be gathered whole (and rescanned on every chunk) before any row is seen.
MAX_LINE_BYTES = 16 * MIB
# A JSON \u escape of a UTF-16 surrogate: only a valid pair makes a character.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# What a name (service, project, model, route...) may not contain: C0/C1 controls, surrogates and
# the bidirectional controls that make a report read differently from what it holds.
_NOT_IN_NAME = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass
class BadRows:
    source: str
    max_listed: int = 20
    count: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.max_listed:
            self.examples.append((line, reason))

    def check(self, total: int, max_share: float) -> None:
        """Raise InputError when the file has no usable row or too many bad ones."""
        good = total - self.count
        if total == 0:
            raise InputError("no data rows", where=self.source)
        share = self.count / total
        if good == 0 or share > max_share:
            listed = "; ".join(f"line {line}: {reason}" for line, reason in self.examples[:5])
            raise InputError(
                f"{self.count} of {total} rows are malformed ({share:.1%}, more than the allowed "
                f"{max_share:.1%}); first: {listed}",
                where=self.source,
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "lines": [{"line": line, "reason": reason} for line, reason in self.examples],
        }

    def finding(self, rows: int, source: str) -> Finding | None:
        """The run's finding about skipped rows (None when there were none); ``source`` is the
        input as the report names it."""
        if not self.count:
            return None
        return Finding(
            id="input:malformed-rows",
            severity=Severity.low,
            summary=f"{self.count} malformed row(s) of {rows} skipped in {source}",
            evidence=self.as_dict(),
        )


class RowCounter:
    """Rows read from one source so far, and the bad ones among them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows = 0
        self.bad = BadRows(source)

    def reject(self, line: int, reason: str) -> None:
        """Count a row that never reaches validation (unparsable, wrong shape)."""
        self.rows += 1
        self.bad.add(line, reason)


def json_objects(
    lines: Iterable[tuple[int, str]], counter: RowCounter
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per JSON-lines record of numbered ``lines``. Blank lines are not
    rows; a line that is not a JSON object (or is too long or too deeply nested to be one) is
    rejected in ``counter`` and reading goes on."""
    loads = json.loads
    for number, text in lines:
        if len(text) > MAX_RECORD_CHARS:
            counter.reject(
                number, f"longer than {MAX_RECORD_CHARS:,} characters; expected one JSON object per line"
            )
            continue
        if not text or text.isspace():
            continue
        try:
            record = loads(text)
        except json.JSONDecodeError as exc:
            counter.reject(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            counter.reject(number, "invalid JSON: nested too deeply")
            continue
        if not isinstance(record, dict):
            counter.reject(number, "expected a JSON object")
            continue
        if _SURROGATE_ESCAPE.search(text) is not None and _has_lone_surrogate(record):
            counter.reject(number, "invalid JSON: a \\u escape of a lone surrogate is not a character")
            continue
        yield number, record


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) of a parsed JSON value holds a lone surrogate: such text
    cannot be encoded as UTF-8, so nothing downstream could store or print it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def is_name(text: str) -> bool:
    """Whether ``text`` may name something in a report: no control characters or surrogates."""
    return _NOT_IN_NAME.search(text) is None


def is_gzip(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(".gz")


class GzipInput:
    """The decompressed bytes of a gzip stream, read through the core's bounded reader: at most
    ``max_bytes`` of them (a small file may expand without bound), InputError naming ``where``
    for more or for data that is not gzip."""

    def __init__(self, raw: Any, max_bytes: int, where: str) -> None:
        self._file = gzip.GzipFile(fileobj=raw, mode="rb")
        self._left = max_bytes
        self._limit = max_bytes
        self._where = where

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self._left + 1:
            size = self._left + 1  # one byte past the limit tells "too big" from "exactly the limit"
        try:
            data = self._file.read(size)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise InputError(
                f"not a valid gzip file ({_gzip_problem(exc)}); expected gzip-compressed text",
                where=self._where,
            ) from None
        except OSError as exc:
            raise InputError(
                f"cannot read: {exc.strerror or type(exc).__name__}", where=self._where
            ) from None
        self._left -= len(data)
        if self._left < 0:
            raise InputError(
                f"decompresses to more than the input limit of {self._limit} bytes (inputs.max_bytes)",
                where=self._where,
            )
        return data

    def close(self) -> None:
        self._file.close()


def _gzip_problem(exc: BaseException) -> str:
    # The gzip module's own messages may quote bytes of the file: name the problem instead.
    if isinstance(exc, EOFError):
        return "truncated"
    if isinstance(exc, gzip.BadGzipFile):
        text = str(exc)
        return "checksum or length mismatch" if "CRC" in text or "length" in text else "no gzip header"
    return "corrupt compressed data"


class LineBound:
    """A binary reader that refuses a line longer than ``max_line_bytes`` as soon as the bytes
    read say so, naming the line. It counts line breaks per chunk (no per-line work)."""

    def __init__(self, raw: Any, max_line_bytes: int, where: str) -> None:
        self._raw = raw
        self._max = max_line_bytes
        self._where = where
        self._line = 1  # the line the next byte belongs to
        self._run = 0  # bytes of that line read so far

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._raw.read(size)
        last = data.rfind(b"\n")
        if last < 0:
            self._run += len(data)
        else:
            start = 0
            end = data.find(b"\n")
            while True:  # each line that ends in this chunk
                if self._run + end - start > self._max:
                    self._refuse()
                self._line += 1
                self._run = 0
                if end == last or len(data) <= self._max:
                    break  # the remaining lines of the chunk are shorter than the chunk
                start = end + 1
                end = data.find(b"\n", start)
            self._line += data.count(b"\n", end + 1, last + 1)
            self._run = len(data) - last - 1
        if self._run > self._max:
            self._refuse()
        return data

    def _refuse(self) -> None:
        raise InputError(
            f"line longer than {self._max:,} bytes; expected one record per line",
            where=f"{self._where}:{self._line}",
        )


@contextmanager
def open_lines(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[Iterator[tuple[int, str]]]:
    """Numbered UTF-8 lines of an input file (``*.gz`` decompressed): a regular file of at most
    ``max_bytes``, decompressing to at most ``max_bytes``, no line longer than
    ``max_line_bytes``. InputError naming the file (and the line) for anything else."""
    where = str(path)
    raw = open_input(path, max_bytes=max_bytes, where=where)
    try:
        stream = GzipInput(raw, max_bytes, where) if is_gzip(path) else raw
        yield text_lines(LineBound(stream, max_line_bytes, where), where)
    finally:
        raw.close()


def short(value: object) -> str:
    """A bounded, sanitized quote of an input value for a bad-row reason (see ``excerpt``)."""
    return excerpt(value if isinstance(value, str | bytes) else repr(value))
