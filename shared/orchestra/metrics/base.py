"""The metrics port: a time series per metric, and the sources that produce them.

A series is two aligned numpy arrays: ``t_ms`` (int64 epoch milliseconds, strictly increasing)
and ``values`` (float64). Units are fixed per metric name so every source speaks the same
language: utilizations and the error rate in percent, latency in milliseconds, request counts as
requests per sample interval, instance counts as instances.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import OrchestraError, TransientError, is_transient
from .names import ALL_METRICS, FILE_METRICS, PERCENT_METRICS, UNITS  # noqa: F401 - re-exported


class MetricsQueryError(OrchestraError):
    """A metrics backend refused a query in a way retrying cannot fix (permission, bad filter)."""


class MetricsUnavailable(TransientError):
    """A metrics backend failed in a way that may succeed on retry."""


def backend_error(exc: BaseException, what: str) -> OrchestraError:
    """Classify a client exception into our taxonomy, keeping what was being asked."""
    message = f"{what}: {type(exc).__name__}: {exc}"
    return MetricsUnavailable(message) if is_transient(exc) else MetricsQueryError(message)


def to_ms(when: dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(round(when.timestamp() * 1000))


def from_ms(ms: int | np.integer) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=int(ms))


def iso(ms: int | np.integer) -> str:
    """ISO 8601 UTC with a Z, seconds precision unless the instant has milliseconds."""
    when = from_ms(ms)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class MetricSeries:
    name: str
    t_ms: np.ndarray
    values: np.ndarray
    origin: str

    def __post_init__(self) -> None:
        if self.t_ms.shape != self.values.shape:
            raise ValueError(f"{self.name}: timestamps and values differ in length")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def unit(self) -> str:
        return UNITS.get(self.name, "")

    @property
    def start_ms(self) -> int:
        return int(self.t_ms[0])

    @property
    def end_ms(self) -> int:
        return int(self.t_ms[-1])

    @property
    def span_seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000.0 if len(self) else 0.0

    def median_interval_seconds(self) -> float | None:
        if len(self) < 2:
            return None
        return float(np.median(np.diff(self.t_ms))) / 1000.0

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> MetricSeries:
        """Samples with start_ms < t <= end_ms (either bound optional)."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.t_ms, start_ms, side="right"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.t_ms, end_ms, side="right"))
        return MetricSeries(self.name, self.t_ms[lo:hi], self.values[lo:hi], self.origin)

    def last_minutes(self, minutes: float) -> MetricSeries:
        if not len(self):
            return self
        return self.between(self.end_ms - int(minutes * 60_000), None)


def make_series(
    name: str, t_ms: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray, origin: str
) -> MetricSeries:
    return MetricSeries(name, np.asarray(t_ms, dtype=np.int64), np.asarray(values, dtype=np.float64), origin)


class MetricsSource(ABC):
    """Port: fetch series for one service. ``describe`` says plainly where data comes from."""

    kind: str

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def available(self) -> tuple[str, ...]:
        """Metric names this source can produce."""

    @abstractmethod
    def fetch(
        self,
        service: str,
        metrics: Sequence[str],
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> dict[str, MetricSeries]:
        """Series for the requested metrics that exist; missing metrics are simply absent."""

    @abstractmethod
    def spec(self) -> dict[str, object]:
        """A JSON description from which ``source_from_spec`` rebuilds this source (verification
        may run in another process)."""
