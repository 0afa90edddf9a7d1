"""Flaky tests, slow tests and duration trends, from stored suite runs.

A test is flaky when
- it failed and passed on the same commit (the strongest evidence: same code, different result);
- it failed, then passed when re-run inside one run (Surefire ``flakyFailure``); or
- its outcome flips often: changes between pass and fail / (runs - 1) >= ``flip_rate`` over at
  least ``min_runs`` runs.

Its flake rate is the share of its runs that failed (or needed a rerun to pass). Flaky tests
whose flake rate reaches ``quarantine_rate`` are suggested for quarantine. A test that fails in
every recent run is broken, not flaky, and reported separately.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .results import SuiteRun
from .settings import FlakyRules

FAILING = ("failed", "error")
RECENT_RUNS = 50
"""Outcomes kept per flaky test for the console's chart (the most recent runs)."""


@dataclass
class TestHistory:
    __test__ = False  # not a pytest test class

    suite: str
    test: str
    outcomes: list[tuple[str | None, str, int]] = field(default_factory=list)  # (revision, outcome, reruns)
    durations: list[float] = field(default_factory=list)

    def judged(self) -> list[tuple[str | None, str, int]]:
        return [o for o in self.outcomes if o[1] != "skipped"]


@dataclass
class FlakyTest:
    suite: str
    test: str
    runs: int
    failures: int
    flips: int
    flip_rate: float
    flake_rate: float
    same_commit: list[str]
    reruns: int
    reasons: list[str]
    quarantine: bool
    recent: str = ""  # outcomes of the last runs, oldest first (see outcome_letter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "test": self.test,
            "runs": self.runs,
            "failures": self.failures,
            "flips": self.flips,
            "flip_rate": round(self.flip_rate, 3),
            "flake_rate": round(self.flake_rate, 3),
            "same_commit": self.same_commit[:5],
            "reruns": self.reruns,
            "reasons": self.reasons,
            "quarantine": self.quarantine,
            "recent": self.recent,
        }


def outcome_letter(outcome: str, reruns: int) -> str:
    """One judged outcome as a letter: ``F`` failed (or error), ``R`` passed after a rerun,
    ``P`` passed."""
    if outcome in FAILING:
        return "F"
    return "R" if reruns > 0 else "P"


def histories(runs: list[SuiteRun]) -> dict[tuple[str, str], TestHistory]:
    """Per (suite, test), oldest first. ``runs`` may come in any order."""
    out: dict[tuple[str, str], TestHistory] = {}
    for run in sorted(runs, key=lambda r: (r.started_at, r.id)):
        for test in run.tests:
            key = (run.suite, test.id)
            hist = out.get(key)
            if hist is None:
                hist = out[key] = TestHistory(run.suite, test.id)
            hist.outcomes.append((run.revision, test.outcome, test.reruns_failed))
            if test.duration_seconds is not None:
                hist.durations.append(test.duration_seconds)
    return out


def judge(hist: TestHistory, rules: FlakyRules) -> FlakyTest | None:
    judged = hist.judged()
    if not judged:
        return None
    failed = [o for o in judged if o[1] in FAILING]
    by_revision: dict[str, set[str]] = defaultdict(set)
    for revision, outcome, _ in judged:
        if revision:
            by_revision[revision].add("fail" if outcome in FAILING else "pass")
    same_commit = sorted(rev for rev, seen in by_revision.items() if seen == {"pass", "fail"})
    reruns = sum(1 for _, outcome, n in judged if outcome == "passed" and n > 0)
    flips = sum(1 for a, b in zip(judged, judged[1:], strict=False) if (a[1] in FAILING) != (b[1] in FAILING))
    flip_rate = flips / (len(judged) - 1) if len(judged) > 1 else 0.0
    reasons = []
    if same_commit:
        reasons.append(f"failed and passed on the same commit ({', '.join(r[:12] for r in same_commit[:3])})")
    if reruns:
        reasons.append(f"passed only after a rerun in {reruns} run(s)")
    if len(judged) >= rules.min_runs and flip_rate >= rules.flip_rate:
        reasons.append(f"outcome flipped {flips} times in {len(judged)} runs")
    if not reasons:
        return None
    flake_rate = (len(failed) + reruns) / len(judged)
    return FlakyTest(
        suite=hist.suite,
        test=hist.test,
        runs=len(judged),
        failures=len(failed),
        flips=flips,
        flip_rate=flip_rate,
        flake_rate=flake_rate,
        same_commit=same_commit,
        reruns=reruns,
        reasons=reasons,
        quarantine=flake_rate >= rules.quarantine_rate,
        recent="".join(outcome_letter(outcome, n) for _, outcome, n in judged[-RECENT_RUNS:]),
    )


def flaky_tests(runs: list[SuiteRun], rules: FlakyRules) -> list[FlakyTest]:
    found = [f for h in histories(runs).values() if (f := judge(h, rules)) is not None]
    return sorted(found, key=lambda f: (-f.flake_rate, f.suite, f.test))


def broken_tests(runs: list[SuiteRun], last: int = 3) -> list[dict[str, Any]]:
    """Tests that failed in each of their last ``last`` judged runs (and were not flaky there)."""
    out = []
    for hist in histories(runs).values():
        judged = hist.judged()
        if len(judged) >= last and all(o[1] in FAILING for o in judged[-last:]):
            out.append(
                {
                    "suite": hist.suite,
                    "test": hist.test,
                    "failing_runs": sum(1 for o in judged if o[1] in FAILING),
                }
            )
    return sorted(out, key=lambda d: (d["suite"], d["test"]))


def slowest_tests(runs: list[SuiteRun], top: int) -> list[dict[str, Any]]:
    """Slowest tests by their latest duration, with their mean over the history."""
    hists = histories(runs)
    latest: dict[tuple[str, str], float] = {}
    for run in sorted(runs, key=lambda r: (r.started_at, r.id)):
        for test in run.tests:
            if test.duration_seconds is not None:
                latest[(run.suite, test.id)] = test.duration_seconds
    ranked = sorted(latest.items(), key=lambda kv: -kv[1])[:top]
    return [
        {
            "suite": suite,
            "test": test,
            "latest_seconds": round(seconds, 3),
            "mean_seconds": round(statistics.fmean(hists[(suite, test)].durations), 3),
            "runs": len(hists[(suite, test)].durations),
        }
        for (suite, test), seconds in ranked
    ]


def duration_trends(runs: list[SuiteRun], window: int) -> list[dict[str, Any]]:
    """Per suite: median duration of the last ``window`` runs against the ``window`` before."""
    by_suite: dict[str, list[SuiteRun]] = defaultdict(list)
    for run in runs:
        if run.status in ("passed", "failed"):
            by_suite[run.suite].append(run)
    out = []
    for suite, suite_runs in sorted(by_suite.items()):
        ordered = sorted(suite_runs, key=lambda r: (r.started_at, r.id))
        recent = ordered[-window:]
        before = ordered[-2 * window : -window]
        entry: dict[str, Any] = {
            "suite": suite,
            "runs": len(ordered),
            "recent_median_seconds": round(statistics.median(r.duration_seconds for r in recent), 3),
        }
        if len(before) >= 2:
            previous = statistics.median(r.duration_seconds for r in before)
            entry["previous_median_seconds"] = round(previous, 3)
            entry["change"] = (
                round((entry["recent_median_seconds"] - previous) / previous, 3) if previous > 0 else None
            )
        out.append(entry)
    return out
