"""Metric series and the sources that read them (files, Cloud Monitoring, the bundled sample).

This package module stays light (settings models import the names); numpy comes in with
``metrics.base`` and the sources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .names import ALL_METRICS, FILE_METRICS, PERCENT_METRICS, UNITS

if TYPE_CHECKING:
    from .base import MetricsSource

__all__ = ["ALL_METRICS", "FILE_METRICS", "PERCENT_METRICS", "UNITS", "source_from_spec"]


def source_from_spec(spec: dict[str, Any], *, monitoring_client: Any = None) -> MetricsSource:
    """Rebuild a source from ``MetricsSource.spec()`` (stored with an action for verification)."""
    kind = spec.get("type")
    if kind == "files":
        from ..inputs import DEFAULT_MAX_BYTES
        from .files import FileMetricsSource

        return FileMetricsSource(
            spec["paths"], label=spec.get("label"), max_bytes=int(spec.get("max_bytes") or DEFAULT_MAX_BYTES)
        )
    if kind == "cloud-monitoring":
        from .cloud_monitoring import CloudMonitoringSource

        return CloudMonitoringSource(
            spec["project"],
            region=spec.get("region"),
            alignment_seconds=int(spec.get("alignment_seconds", 60)),
            client=monitoring_client,
        )
    raise InputError(
        f"unknown metrics source type {kind!r}; accepted: files, cloud-monitoring", where="source"
    )
