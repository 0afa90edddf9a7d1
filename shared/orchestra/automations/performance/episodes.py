"""Sustained-breach episodes, vectorised.

An episode is a maximal run of consecutive samples strictly above the threshold. It is broken by
a sample at or below the threshold, or by a gap between consecutive samples longer than twice the
series' median sampling interval. An episode is a breach when (last timestamp - first timestamp)
>= the rule's duration.

Everything is whole-array numpy: boundary masks, ``flatnonzero`` for starts/ends, a cumulative sum
for means and ``maximum.reduceat`` for peaks, so a million samples take milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Episodes:
    """Parallel arrays, one entry per qualifying episode (indices into the series)."""

    start: np.ndarray  # index of the first breaching sample
    end: np.ndarray  # index of the last breaching sample (inclusive)
    start_ms: np.ndarray
    end_ms: np.ndarray
    peak: np.ndarray
    mean: np.ndarray
    gap_limit_ms: float | None

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @property
    def duration_s(self) -> np.ndarray:
        return (self.end_ms - self.start_ms) / 1000.0

    @property
    def samples(self) -> np.ndarray:
        return self.end - self.start + 1


def gap_limit(t_ms: np.ndarray) -> float | None:
    """Twice the median sampling interval (ms); None with fewer than two samples."""
    if t_ms.shape[0] < 2:
        return None
    return 2.0 * float(np.median(np.diff(t_ms)))


def find_episodes(t_ms: np.ndarray, values: np.ndarray, threshold: float, min_duration_s: float) -> Episodes:
    t_ms = np.asarray(t_ms, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    limit = gap_limit(t_ms)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return Episodes(empty, empty, empty, empty, np.zeros(0), np.zeros(0), limit)
    above = values > threshold
    # link[i] is True when samples i and i+1 belong to the same run.
    if n > 1:
        link = above[:-1] & above[1:]
        if limit is not None:
            link &= np.diff(t_ms) <= limit
    else:
        link = np.zeros(0, dtype=bool)
    not_linked_before = np.ones(n, dtype=bool)
    not_linked_before[1:] = ~link
    not_linked_after = np.ones(n, dtype=bool)
    not_linked_after[:-1] = ~link
    starts = np.flatnonzero(above & not_linked_before)
    ends = np.flatnonzero(above & not_linked_after)
    keep = (t_ms[ends] - t_ms[starts]) >= int(round(min_duration_s * 1000))
    starts, ends = starts[keep], ends[keep]
    if starts.shape[0] == 0:
        return Episodes(empty, empty, empty, empty, np.zeros(0), np.zeros(0), limit)
    csum = np.concatenate(([0.0], np.cumsum(values)))
    means = (csum[ends + 1] - csum[starts]) / (ends - starts + 1)
    # reduceat over [start, end+1) pairs; a sentinel keeps end+1 a valid index at the tail.
    padded = np.concatenate((values, [-np.inf]))
    bounds = np.empty(starts.shape[0] * 2, dtype=np.int64)
    bounds[0::2] = starts
    bounds[1::2] = ends + 1
    peaks = np.maximum.reduceat(padded, bounds)[0::2]
    return Episodes(starts, ends, t_ms[starts], t_ms[ends], peaks, means, limit)
