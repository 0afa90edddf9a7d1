"""Block readers of billing export files: a block of whole lines parsed at once.

The row-by-row readers of :mod:`.billing` accept every form of CSV and JSON the standard library
accepts and name each problem with its line. Most blocks of an export are plain: every CSV line
one record of well-formed fields, every JSON line one object of the same layout. Those are parsed
here in bulk (CSV with numpy over the block's bytes, JSON lines with ``orjson``); a block holding
anything else (a record spanning lines, a blank line, a stray quote, invalid JSON, another
layout) is not parsed here at all and goes to the row-by-row reader, so both give the same rows,
values, bad rows and messages.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...inputs import DEFAULT_MAX_BYTES, open_input, text_blocks
from ...toolkit.rows import MAX_LINE_BYTES, MAX_RECORD_CHARS, GzipInput, LineBound, is_gzip

# A JSON \u escape of a UTF-16 surrogate: the row-by-row reader checks such lines one by one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# A JSON line with more opening brackets than this could nest deeper than the row-by-row
# reader's parser accepts: such a block is left to it.
MAX_BRACKETS = 400
# Fields wider than this (bytes) are not gathered into fixed-width arrays.
MAX_FACTOR_WIDTH = 512
# Bytes read at a time; a block is the whole lines they complete.
BLOCK_BYTES = 1 << 20
_QUOTE, _COMMA, _NEWLINE = ord('"'), ord(","), ord("\n")
_NUMBER_BYTES = np.zeros(256, dtype=bool)
_NUMBER_BYTES[list(b"0123456789.-+eE")] = True
_NUMBER_BYTES[0] = True  # the padding of fixed-width arrays


@contextmanager
def open_blocks(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[Iterator[tuple[int, str]]]:
    """Blocks of whole lines (number of the first line, text) of an input file, checked as
    :func:`orchestra.toolkit.rows.open_lines` checks its lines: a regular file within
    ``max_bytes`` (decompressed too for ``*.gz``), strict UTF-8, no NUL, no line longer than
    the limit. InputError naming the file (and the line) otherwise."""
    where = str(path)
    raw = open_input(path, max_bytes=max_bytes, where=where)
    try:
        stream = GzipInput(raw, max_bytes, where) if is_gzip(path) else raw
        yield text_blocks(LineBound(stream, MAX_LINE_BYTES, where), where, chunk_bytes=BLOCK_BYTES)
    finally:
        raw.close()


def csv_text(block: str) -> str:
    """A block's lines as the CSV reader reads them: ``\\r\\n`` as ``\\n``, a final line break."""
    if not block.endswith("\n"):
        block = block.removesuffix("\r") + "\n"
    return block.replace("\r\n", "\n") if "\r" in block else block


@dataclass
class Factor:
    """A text column as its distinct values and, per row, the index of its value."""

    values: list[str]
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> str:
        return self.values[int(self.index[i])]


@dataclass
class CsvBlock:
    """The fields of a block of CSV lines: byte offsets (rows x columns) into ``data``."""

    data: bytes
    buf: np.ndarray
    starts: np.ndarray  # content start of each field (after an opening quote)
    ends: np.ndarray  # content end of each field (before a closing quote)

    @property
    def rows(self) -> int:
        return len(self.starts)

    def factor(self, column: int) -> Factor | None:
        """Column ``column`` as a :class:`Factor`; None when a field is too wide to gather."""
        starts, ends = self.starts[:, column], self.ends[:, column]
        raw = _fixed_width(self.buf, starts, ends)
        if raw is None:
            return None
        # Exports come sorted: runs of equal values, sorted once per run.
        change = np.ones(len(raw), dtype=bool)
        change[1:] = raw[1:] != raw[:-1]
        unique, run_index = np.unique(raw[change], return_inverse=True)
        index = run_index.reshape(-1)[np.cumsum(change) - 1]
        values = [v.decode("utf-8").replace('""', '"') for v in unique.tolist()]
        return Factor(values, index)

    def numbers(self, column: int) -> np.ndarray | None:
        """Column ``column`` as float64 when every field is a plain finite decimal number; None
        otherwise (the row-by-row reader then says which field is not)."""
        starts, ends = self.starts[:, column], self.ends[:, column]
        if not (ends > starts).all():
            return None
        raw = _fixed_width(self.buf, starts, ends, max_width=32)
        if raw is None or not _NUMBER_BYTES[raw.view(np.uint8)].all():
            return None
        try:
            values = raw.astype(np.float64)
        except ValueError:
            return None
        return values if np.isfinite(values).all() else None

    def texts(self, column: int, rows: np.ndarray) -> list[str]:
        """The fields of ``column`` in ``rows`` as text (for the few that need parsing)."""
        data = self.data
        return [
            data[s:e].decode("utf-8").replace('""', '"')
            for s, e in zip(self.starts[rows, column].tolist(), self.ends[rows, column].tolist(), strict=True)
        ]


def _fixed_width(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_width: int = MAX_FACTOR_WIDTH
) -> np.ndarray | None:
    widths = ends - starts
    width = int(widths.max()) if len(widths) else 0
    if width > max_width:
        return None
    if width == 0:
        return np.zeros(len(starts), dtype="S1")
    # Rows of ``width`` bytes from each start (``buf`` ends in MAX_FACTOR_WIDTH spare bytes).
    chars = sliding_window_view(buf, width)[starts]
    chars[np.arange(width) >= widths[:, None]] = 0
    return chars.view(f"S{width}").reshape(-1)


def csv_block(text: str, width: int) -> CsvBlock | None:
    """The fields of ``text`` (whole lines, each ending in ``\\n``, see :func:`csv_text`) when
    every line is one record of ``width`` well-formed fields: unquoted without any quote, or
    quoted with only doubled quotes inside. None otherwise."""
    if "\r" in text:
        return None
    data = text.encode("utf-8")
    buf = np.frombuffer(data + bytes(MAX_FACTOR_WIDTH), dtype=np.uint8)
    newlines = np.flatnonzero(buf == _NEWLINE)
    commas = np.flatnonzero(buf == _COMMA)
    quotes = np.flatnonzero(buf == _QUOTE)
    rows = len(newlines)
    if not rows:
        return None
    if len(quotes):
        # Inside a quoted field an odd number of quotes precedes a character.
        if (np.searchsorted(quotes, newlines) & 1).any():
            return None  # a record spans lines
        commas = commas[(np.searchsorted(quotes, commas) & 1) == 0]
    if len(commas) != rows * (width - 1):
        return None
    line_starts = np.empty(rows, dtype=np.int64)
    line_starts[0] = 0
    line_starts[1:] = newlines[:-1] + 1
    seps = commas.reshape(rows, width - 1) if width > 1 else np.empty((rows, 0), dtype=np.int64)
    # As many separators as lines hold, each line's own between its start and its end.
    if width > 1 and not ((seps[:, 0] >= line_starts) & (seps[:, -1] < newlines)).all():
        return None
    starts = np.empty((rows, width), dtype=np.int64)
    ends = np.empty((rows, width), dtype=np.int64)
    starts[:, 0] = line_starts
    starts[:, 1:] = seps + 1
    ends[:, :-1] = seps
    ends[:, -1] = newlines
    if int((ends - starts).max()) > csv.field_size_limit():
        return None  # the row-by-row reader names the field
    if len(quotes):
        counts = np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)
        quoted = counts > 0
        first, last = starts[quoted], ends[quoted] - 1
        if not ((last > first) & (buf[first] == _QUOTE) & (buf[last] == _QUOTE)).all():
            return None
        inner = np.zeros(len(buf), dtype=bool)
        inner[quotes] = True
        inner[first] = False
        inner[last] = False
        doubled = np.flatnonzero(inner)
        if len(doubled) % 2 or not (doubled[1::2] - doubled[0::2] == 1).all():
            return None
        starts[quoted] += 1
        ends[quoted] -= 1
    return CsvBlock(data, buf, starts, ends)


def json_records(block: str) -> list[dict[str, Any]] | None:
    """The objects of a block of JSON lines when every line is one JSON object that the
    row-by-row reader would accept as it is; None otherwise."""
    import orjson  # only the JSON-lines reader needs it

    lines = block.split("\n")
    if block.endswith("\n"):
        lines.pop()
    if not lines or "" in lines:
        return None
    longest = max(map(len, lines))
    if longest > MAX_RECORD_CHARS:
        return None
    if longest > MAX_BRACKETS:  # only a line this long can hold that many brackets
        long_lines = [line for line in lines if len(line) > MAX_BRACKETS]
        if (
            max(map(str.count, long_lines, repeat("{"))) + max(map(str.count, long_lines, repeat("[")))
            > MAX_BRACKETS
        ):
            return None
    if "\\u" in block and _SURROGATE_ESCAPE.search(block) is not None:
        return None
    try:
        records = list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        return None
    if set(map(type, records)) != {dict}:
        return None
    return records


def json_column(
    records: list[dict[str, Any]], keys: set[str], names: tuple[str, ...], *, required: bool
) -> list[Any] | None:
    """The values of one field as the row-by-row reader's lookup finds them (the first of
    ``names`` a record holds, a dotted name also nested), when every record finds it the same
    way; None otherwise. ``keys``: every top-level key of ``records``."""
    first = records[0]
    for name in names:
        head, dot, tail = name.partition(".")
        if name in keys:
            if name not in first:
                return None
            try:
                return list(map(itemgetter(name), records))
            except KeyError:
                return None
        if not dot or head not in keys:
            continue
        inner = first.get(head)
        if type(inner) is dict and tail in inner:
            try:
                return list(map(itemgetter(tail), map(itemgetter(head), records)))
            except (KeyError, TypeError, IndexError):
                return None
        # The first record holds ``head`` but not nested as ``name``: no other may.
        for record in records:
            value = record.get(head)
            if type(value) is dict and tail in value:
                return None
    return None if required else [None] * len(records)
