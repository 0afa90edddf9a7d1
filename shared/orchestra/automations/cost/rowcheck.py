"""Bookkeeping for malformed input rows, shared by the file readers of cost and ai-services.

A reader keeps going past a bad row (one broken line must not hide a month of data) but counts
it, remembers where it was and why, and refuses the whole file when too much of it is broken:
then the numbers would be wrong rather than incomplete.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ...errors import InputError


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
