"""Stored test-suite results, as a deployment gate reads them.

The testing automation writes one document per suite run in ``test_results`` (its full schema
lives with it); a gate needs only which suite ran on which revision, when, and how it ended, and
which run recorded it (so that a finished run tells a gate which revisions have new results).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from ..models import Timestamp

if TYPE_CHECKING:
    from ..store.base import StateStore

TEST_RESULTS = "test_results"


class SuiteOutcome(BaseModel):
    """The fields of a stored suite run that a gate reads; the others are ignored."""

    model_config = ConfigDict(extra="ignore")

    suite: str
    status: str
    reason: str
    revision: str | None = None
    started_at: Timestamp


def results_for_revision(store: StateStore, revision: str) -> list[SuiteOutcome]:
    """Every stored suite run on ``revision``, newest first (equality only: no composite index)."""
    docs = store.query(TEST_RESULTS, where=[("revision", "==", revision)])
    runs = [SuiteOutcome.model_validate(d) for d in docs]
    return sorted(runs, key=lambda r: r.started_at, reverse=True)


def latest_for_revision(store: StateStore, suite: str, revision: str) -> SuiteOutcome | None:
    for run in results_for_revision(store, revision):
        if run.suite == suite:
            return run
    return None


def results_for_run(store: StateStore, run_id: str) -> list[SuiteOutcome]:
    """The suite runs one run recorded, newest first (equality only: no composite index)."""
    docs = store.query(TEST_RESULTS, where=[("run_id", "==", run_id)])
    runs = [SuiteOutcome.model_validate(d) for d in docs]
    return sorted(runs, key=lambda r: r.started_at, reverse=True)
