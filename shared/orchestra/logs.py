"""Structured logging: JSON lines Cloud Logging understands in the cloud, readable text locally.

JSON is chosen when running on Google Cloud (``K_SERVICE`` / ``FUNCTION_TARGET`` set) or when
``ORCHESTRA_LOG_FORMAT=json``. Fields: ``severity``, ``message``, ``time``, ``logger``, and the
run id, task and trace when known (``logging.googleapis.com/trace`` links logs to a request).

An announcement's line (:mod:`orchestra.announcements`) also carries ``announcement`` (its type),
``announcement_id``, ``source``, ``subject`` and ``data`` as a nested JSON object, so Cloud
Logging indexes ``jsonPayload.announcement``, ``jsonPayload.subject``, ``jsonPayload.data.task``…
Severity ``NOTICE`` (level 25) is written as Cloud Logging's ``NOTICE``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar

trace_context: ContextVar[str | None] = ContextVar("orchestra_trace", default=None)

_EXTRA_FIELDS = ("run_id", "task", "trigger_id", "event_id")
# Written only on announcement lines (a record with an ``announcement`` attribute).
_ANNOUNCEMENT_FIELDS = ("announcement", "announcement_id", "source", "subject", "data")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": record.levelname if record.levelname != "WARNING" else "WARNING",
            "message": record.getMessage(),
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "logger": record.name,
        }
        for key in _EXTRA_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if getattr(record, "announcement", None) is not None:
            for key in _ANNOUNCEMENT_FIELDS:
                entry[key] = getattr(record, key, None)
        trace = trace_context.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        run_id = getattr(record, "run_id", None)
        if getattr(record, "announcement", None) is not None:
            # The message names the type and the subject; the data's plain values follow.
            data = getattr(record, "data", None) or {}
            plain = [f"{k}={v}" for k, v in data.items() if isinstance(v, str | int | float) and v != ""]
            base += "".join(f" {item}" for item in plain)
        elif run_id:
            base += f" [run {run_id}]"
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def wants_json() -> bool:
    explicit = os.environ.get("ORCHESTRA_LOG_FORMAT")
    if explicit:
        return explicit.lower() == "json"
    return bool(os.environ.get("K_SERVICE") or os.environ.get("FUNCTION_TARGET"))


def configure_logging(level: str | None = None) -> None:
    root = logging.getLogger("orchestra")
    if getattr(root, "_orchestra_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if wants_json() else TextFormatter())
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("ORCHESTRA_LOG_LEVEL") or "WARNING").upper())
    root.propagate = False
    root._orchestra_configured = True  # type: ignore[attr-defined]


def set_trace(header: str | None, project: str | None) -> None:
    """From an ``X-Cloud-Trace-Context: TRACE/SPAN;o=1`` header."""
    if header and project:
        trace_context.set(f"projects/{project}/traces/{header.split('/')[0]}")
