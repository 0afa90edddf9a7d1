"""Bounded copies of metric series, small enough to store with a run and draw later.

A run document must stay far below Firestore's 1 MiB limit, yet a chart of two weeks at one-minute
resolution has 20,000 samples. :func:`downsample` keeps at most ``max_points`` of them by
splitting the series into equal buckets of consecutive samples and keeping, in each bucket, the
lowest and the highest sample (in time order). Peaks and dips therefore survive: a breach that is
one sample wide still shows at its full height, which averaging would flatten.

:class:`StoredSeries` is the stored shape (epoch milliseconds and values, rounded to six
significant digits). Importing this module is cheap: numpy loads when a series is downsampled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import numpy as np

MAX_POINTS = 300
"""Points kept per stored series by default."""
SIGNIFICANT_DIGITS = 6


class StoredSeries(BaseModel):
    """A downsampled series as stored with a run: aligned ``t_ms`` (epoch ms, increasing) and
    ``values``; ``samples`` counts the samples it was made from."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    unit: str = ""
    t_ms: list[int] = Field(default_factory=list)
    values: list[float] = Field(default_factory=list)
    samples: int = Field(0, ge=0, description="samples in the series before downsampling")

    @model_validator(mode="after")
    def _aligned(self) -> StoredSeries:
        if len(self.t_ms) != len(self.values):
            raise ValueError(
                f"series {self.name!r}: {len(self.t_ms)} timestamps but {len(self.values)} values; "
                "accepted: one value per timestamp"
            )
        if any(b < a for a, b in zip(self.t_ms, self.t_ms[1:], strict=False)):
            raise ValueError(f"series {self.name!r}: timestamps must not decrease")
        if self.samples < len(self.t_ms):
            raise ValueError(
                f"series {self.name!r}: samples ({self.samples}) is less than the {len(self.t_ms)} points kept"
            )
        return self

    def __len__(self) -> int:
        return len(self.t_ms)

    @property
    def downsampled(self) -> bool:
        return self.samples > len(self.t_ms)

    def points(self) -> list[tuple[dt.datetime, float]]:
        """The points as (UTC datetime, value) pairs, e.g. for a chart."""
        return [(from_ms(t), v) for t, v in zip(self.t_ms, self.values, strict=True)]


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=int(ms))


def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def downsample_indices(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices (increasing) of at most ``max_points`` samples: every sample when there are few
    enough, else the lowest and the highest of each of ``max_points // 2`` equal buckets of
    consecutive samples. ``values`` must be finite."""
    import numpy as np

    if max_points < 2:
        raise ValueError(f"max_points is {max_points}; accepted: 2 or more")
    n = int(values.shape[0])
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = max_points // 2
    bounds = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep: list[int] = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if hi <= lo:
            continue
        chunk = values[lo:hi]
        low, high = lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))
        keep.extend(sorted({low, high}))
    return np.asarray(keep, dtype=np.int64)


def downsample(
    name: str,
    t_ms: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    unit: str = "",
    max_points: int = MAX_POINTS,
) -> StoredSeries:
    """A :class:`StoredSeries` of at most ``max_points`` points (see :func:`downsample_indices`).

    Samples whose value is not finite (NaN, infinity) are left out: a chart shows a gap there."""
    import numpy as np

    times = np.asarray(t_ms, dtype=np.int64)
    data = np.asarray(values, dtype=np.float64)
    if times.shape != data.shape:
        raise ValueError(f"series {name!r}: {times.shape[0]} timestamps but {data.shape[0]} values")
    finite = np.isfinite(data)
    times, data = times[finite], data[finite]
    keep = downsample_indices(data, max_points)
    return StoredSeries(
        name=name,
        unit=unit,
        t_ms=[int(t) for t in times[keep].tolist()],
        values=[_rounded(v) for v in data[keep].tolist()],
        samples=int(times.shape[0]),
    )


def stored_bytes(document: Any) -> int:
    """The size of ``document`` as compact JSON (UTF-8): an upper bound of what numbers and
    strings take in a Firestore document, to check what a run stores against its 1 MiB limit."""
    import json

    return len(json.dumps(document, separators=(",", ":"), allow_nan=False).encode())
