"""Stored suite results: one document per suite run in ``test_results``.

Deployment gates read them through :mod:`orchestra.toolkit.suite_results`.

A document holds every test's outcome and duration, so flaky detection and trends work from
the store alone. Firestore caps documents at 1 MiB: messages are truncated when parsed, and a
very large suite keeps failing, flaky and slow tests in full and counts the passing rest.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ...models import Timestamp
from ...toolkit.suite_results import TEST_RESULTS

if TYPE_CHECKING:
    from ...store.base import StateStore

MAX_DOC_BYTES = 900_000  # below Firestore's 1 MiB with room for field names and indexes


class SuiteStatus(StrEnum):
    passed = "passed"
    failed = "failed"
    timed_out = "timed_out"
    error = "error"


class TestResult(BaseModel):
    __test__ = False  # not a pytest test class

    model_config = ConfigDict(extra="forbid")

    id: str
    outcome: str
    duration_seconds: float | None = None
    message: str | None = None
    reruns_failed: int = 0


class SuiteRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    suite: str
    status: SuiteStatus
    reason: str
    revision: str | None = None
    branch: str | None = None
    trigger: str = "manual"
    run_id: str | None = None
    started_at: Timestamp
    finished_at: Timestamp
    duration_seconds: float
    exit_code: int | None = None
    timed_out: bool = False
    command: list[str] = Field(default_factory=list)
    junit_path: str | None = None
    junit_problem: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    tests: list[TestResult] = Field(default_factory=list)
    omitted_tests: int = Field(0, description="passing tests not stored to stay under the size limit")
    output_tail: str = ""
    expires_at: Timestamp | None = None


def _size(doc: dict[str, Any]) -> int:
    return len(json.dumps(doc, separators=(",", ":")).encode())


def fit(run: SuiteRun, limit: int = MAX_DOC_BYTES) -> SuiteRun:
    """Shrink ``run`` until its document fits: drop passing tests' messages, shorten the rest,
    then keep only non-passing, rerun-flaky and the slowest passing tests."""
    doc = run.model_dump(mode="json")
    if _size(doc) <= limit:
        return run
    tests = [t.model_copy(update={"message": None}) if t.outcome == "passed" else t for t in run.tests]
    run = run.model_copy(update={"tests": tests, "output_tail": run.output_tail[-1000:]})
    if _size(run.model_dump(mode="json")) <= limit:
        return run
    tests = [t.model_copy(update={"message": (t.message or "")[:120] or None}) for t in run.tests]
    run = run.model_copy(update={"tests": tests})
    if _size(run.model_dump(mode="json")) <= limit:
        return run
    keep = [t for t in run.tests if t.outcome != "passed" or t.reruns_failed]
    passing = sorted(
        (t for t in run.tests if t.outcome == "passed" and not t.reruns_failed),
        key=lambda t: -(t.duration_seconds or 0.0),
    )
    budget = limit - _size(run.model_copy(update={"tests": keep}).model_dump(mode="json"))
    kept_passing = []
    for test in passing:
        cost = _size(test.model_dump(mode="json")) + 1
        if cost > budget:
            break
        kept_passing.append(test)
        budget -= cost
    omitted = len(passing) - len(kept_passing)
    return run.model_copy(update={"tests": keep + kept_passing, "omitted_tests": run.omitted_tests + omitted})


def save_suite_run(store: StateStore, run: SuiteRun) -> SuiteRun:
    run = fit(run)
    store.put(TEST_RESULTS, run.id, run.model_dump(mode="json"))
    return run


def suite_history(store: StateStore, suite: str | None = None, limit: int = 30) -> list[SuiteRun]:
    """Newest first."""
    where: list[Any] = [("suite", "==", suite)] if suite else []
    docs = store.query(TEST_RESULTS, where=where, order_by="started_at", descending=True, limit=limit)
    return [SuiteRun.model_validate(d) for d in docs]
