"""Post-deployment verification: HTTP health probes and, when configured, the error-rate rule.

Probes: ``probes`` GET requests to ``url + path``, ``interval_seconds`` apart (the injected
clock sleeps, so tests do not wait). A probe succeeds on a 2xx/3xx answer within the timeout whose
body contains ``expect_body`` (with ``{revision}`` replaced) when set. The deployment passes when
the success ratio reaches ``min_success_ratio`` and the p95 latency of successful probes stays
under ``max_latency_ms``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...clock import Clock
from .settings import ErrorRateRule, VerificationConfig

MAX_BODY_BYTES = 64 * 1024
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass
class ProbeResult:
    ok: bool
    status: int | None
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 1),
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class HealthReport:
    ok: bool
    url: str
    reasons: list[str] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    success_ratio: float = 0.0
    p95_latency_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "url": self.url,
            "reasons": self.reasons,
            "success_ratio": round(self.success_ratio, 3),
            "p95_latency_ms": None if self.p95_latency_ms is None else round(self.p95_latency_ms, 1),
            "probes": [p.as_dict() for p in self.probes],
        }


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in LOOPBACK:
        # A local service must never be reached through a corporate proxy.
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def probe(
    url: str, *, timeout: float, expect_body: str | None, timer: Callable[[], float] = time.perf_counter
) -> ProbeResult:
    opener = _opener(url)
    started = timer()
    try:
        with opener.open(
            urllib.request.Request(url, headers={"User-Agent": "orchestra-verify"}), timeout=timeout
        ) as resp:
            status = resp.status
            body = resp.read(MAX_BODY_BYTES)
    except urllib.error.HTTPError as exc:
        return ProbeResult(False, exc.code, (timer() - started) * 1000, f"HTTP {exc.code}")
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return ProbeResult(False, None, (timer() - started) * 1000, f"{type(exc).__name__}: {reason}")
    latency = (timer() - started) * 1000
    if not 200 <= status < 400:
        return ProbeResult(False, status, latency, f"HTTP {status}")
    if expect_body is not None and expect_body.encode() not in body:
        return ProbeResult(False, status, latency, f"body does not contain {expect_body!r}")
    return ProbeResult(True, status, latency)


def health_check(
    base_url: str,
    config: VerificationConfig,
    *,
    revision: str,
    clock: Clock,
    heartbeat: Callable[[], None] = lambda: None,
    timer: Callable[[], float] = time.perf_counter,
) -> HealthReport:
    url = base_url.rstrip("/") + "/" + config.path.lstrip("/") if config.path != "/" else base_url
    expect = config.expect_body.replace("{revision}", revision) if config.expect_body else None
    report = HealthReport(ok=False, url=url)
    for i in range(config.probes):
        if i:
            clock.sleep(config.interval_seconds)
        report.probes.append(probe(url, timeout=config.timeout_seconds, expect_body=expect, timer=timer))
        heartbeat()
    good = [p for p in report.probes if p.ok]
    report.success_ratio = len(good) / len(report.probes)
    report.p95_latency_ms = p95([p.latency_ms for p in good])
    if report.success_ratio < config.min_success_ratio:
        errors = sorted({p.error or "" for p in report.probes if not p.ok})
        report.reasons.append(
            f"{len(good)}/{len(report.probes)} probes succeeded, below {config.min_success_ratio:.0%} "
            f"({'; '.join(errors)[:300]})"
        )
    if report.p95_latency_ms is not None and report.p95_latency_ms > config.max_latency_ms:
        report.reasons.append(
            f"p95 latency {report.p95_latency_ms:.0f} ms above {config.max_latency_ms:.0f} ms"
        )
    report.ok = not report.reasons
    return report


@dataclass
class ErrorRateReport:
    ok: bool
    source: str
    samples: int
    mean_percent: float | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "samples": self.samples,
            "mean_percent": None if self.mean_percent is None else round(self.mean_percent, 3),
            "reason": self.reason,
        }


def error_rate_check(
    rule: ErrorRateRule,
    *,
    service: str,
    now: dt.datetime,
    project: str | None = None,
    region: str | None = None,
    monitoring_client: Any = None,
) -> ErrorRateReport:
    """Mean error rate (%) over the last ``rule.minutes``; above ``rule.above`` fails.

    No samples (no traffic yet) does not fail: the health probes still decide, and the evidence
    says the rule had nothing to judge.
    """
    from ...metrics.files import FileMetricsSource

    source: Any
    if rule.source == "file":
        source = FileMetricsSource({"error_rate": rule.path or ""}, label="error-rate file")
        series = source.fetch(service, ["error_rate"]).get("error_rate")
        if series is not None:
            series = series.last_minutes(rule.minutes)
    else:
        from ...metrics.cloud_monitoring import CloudMonitoringSource

        if not project:
            return ErrorRateReport(
                False, "cloud_monitoring", 0, None, "no project to query (configure a cloud_run deployer)"
            )
        source = CloudMonitoringSource(project, region=region, client=monitoring_client)
        start = now - dt.timedelta(minutes=rule.minutes)
        series = source.fetch(service, ["error_rate"], start=start, end=now).get("error_rate")
    described = source.describe()
    if series is None or not len(series):
        return ErrorRateReport(
            True, described, 0, None, f"no error-rate samples in the last {rule.minutes:g} min"
        )
    mean = float(series.values.mean())
    if mean > rule.above:
        return ErrorRateReport(
            False,
            described,
            len(series),
            mean,
            f"error rate {mean:.2f}% above {rule.above:g}% over {len(series)} samples",
        )
    return ErrorRateReport(
        True, described, len(series), mean, f"error rate {mean:.2f}% within {rule.above:g}%"
    )
