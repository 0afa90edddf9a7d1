"""Bookkeeping for malformed input rows, shared by the file readers of cost and ai-services.

A reader keeps going past a bad row (one broken line must not hide a month of data) but counts
it, remembers where it was and why, and refuses the whole file when too much of it is broken:
then the numbers would be wrong rather than incomplete.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ...errors import InputError
from ...models import Finding, Severity


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


def json_objects(stream: Iterable[str], counter: RowCounter) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per JSON-lines record. Blank lines are not rows; a line that is not
    a JSON object is rejected in ``counter`` and reading goes on."""
    for number, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            counter.reject(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(record, dict):
            counter.reject(number, "expected a JSON object")
            continue
        yield number, record


def open_text(path: str | Path) -> IO[str]:
    """Open a text input, transparently gunzipping ``*.gz``; InputError when unreadable."""
    p = Path(path)
    try:
        if p.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", newline="")
        return open(p, encoding="utf-8", newline="")
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", where=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None


def short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
