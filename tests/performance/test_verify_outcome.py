"""Performance verification has three outcomes: a worse check fails, a check that cannot judge
(no samples after the change, no baseline) leaves it inconclusive, else it passed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from orchestra.automations.performance.engine import judge, outcome_of
from orchestra.metrics.base import MetricSeries
from orchestra.models import VerificationOutcome

START_MS = 1_700_000_000_000


def series(values: list[float]) -> MetricSeries:
    t_ms = np.array([START_MS + 60_000 * i for i in range(len(values))], dtype=np.int64)
    return MetricSeries(name="cpu", t_ms=t_ms, values=np.array(values, dtype=float), origin="test")


def relative(baseline: float | None) -> dict[str, Any]:
    return {"rule": "cpu", "metric": "cpu", "kind": "not-worse", "baseline": baseline}


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["better", "not-worse", "ok"], VerificationOutcome.passed),
        (["better", "inconclusive"], VerificationOutcome.inconclusive),
        (["inconclusive"], VerificationOutcome.inconclusive),
        (["worse", "inconclusive"], VerificationOutcome.failed),
        (["ok", "worse"], VerificationOutcome.failed),
    ],
)
def test_outcome_of_the_checks(verdicts: list[str], expected: VerificationOutcome) -> None:
    assert outcome_of([{"verdict": v} for v in verdicts]) == expected


def test_no_samples_after_the_change_is_inconclusive() -> None:
    verdict = judge(relative(50.0), None, 5)
    assert verdict["verdict"] == "inconclusive" and "no samples" in verdict["reason"]
    assert judge(relative(50.0), series([]), 5)["verdict"] == "inconclusive"


def test_no_baseline_is_inconclusive_but_a_worse_mean_still_fails() -> None:
    assert judge(relative(None), series([40.0, 41.0]), 5)["verdict"] == "inconclusive"
    assert judge(relative(40.0), series([43.0, 43.0]), 5)["verdict"] == "worse"  # above 42 (+5 %)
    assert judge(relative(40.0), series([41.0, 41.5]), 5)["verdict"] == "not-worse"
    assert judge(relative(40.0), series([30.0]), 5)["verdict"] == "better"
