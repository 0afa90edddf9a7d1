"""Metric names and units (no heavy imports: settings models use these)."""

from __future__ import annotations

# Names a user can give with --metric NAME=PATH.
FILE_METRICS: tuple[str, ...] = ("cpu", "memory", "latency_p95", "error_rate", "request_count")
# Everything a source may produce (instance counts only come from Cloud Monitoring).
ALL_METRICS: tuple[str, ...] = (*FILE_METRICS, "instance_count")

UNITS: dict[str, str] = {
    "cpu": "%",
    "memory": "%",
    "latency_p95": "ms",
    "error_rate": "%",
    "request_count": "requests/interval",
    "instance_count": "instances",
}

PERCENT_METRICS = frozenset({"cpu", "memory", "error_rate"})
