"""Metric series and the sources that read them (files, Cloud Monitoring, the bundled sample)."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .base import (
    ALL_METRICS,
    FILE_METRICS,
    UNITS,
    MetricSeries,
    MetricsQueryError,
    MetricsSource,
    MetricsUnavailable,
    from_ms,
    iso,
    make_series,
    to_ms,
)
from .files import FileMetricsSource, read_series

__all__ = [
    "ALL_METRICS",
    "FILE_METRICS",
    "UNITS",
    "FileMetricsSource",
    "MetricSeries",
    "MetricsQueryError",
    "MetricsSource",
    "MetricsUnavailable",
    "from_ms",
    "iso",
    "make_series",
    "read_series",
    "source_from_spec",
    "to_ms",
]


def source_from_spec(spec: dict[str, Any], *, monitoring_client: Any = None) -> MetricsSource:
    """Rebuild a source from ``MetricsSource.spec()`` (stored with an action for verification)."""
    kind = spec.get("type")
    if kind == "files":
        return FileMetricsSource(spec["paths"], label=spec.get("label"))
    if kind == "cloud-monitoring":
        from .cloud_monitoring import CloudMonitoringSource

        return CloudMonitoringSource(
            spec["project"],
            region=spec.get("region"),
            alignment_seconds=int(spec.get("alignment_seconds", 60)),
            client=monitoring_client,
        )
    raise InputError(f"unknown metrics source type {kind!r}; accepted: files, cloud-monitoring", where="source")
