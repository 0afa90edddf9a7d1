"""The suite runner port: run one configured suite for a run, return its :class:`SuiteRun`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ....clock import Clock
from ..results import SuiteRun
from ..settings import Suite


@dataclass(frozen=True)
class SuiteJob:
    """One suite to run, and what the run knows about the code it tests."""

    name: str
    suite: Suite
    run_id: str
    clock: Clock
    repo: str | None = None
    revision: str | None = None
    branch: str | None = None
    trigger: str = "manual"
    retention_days: int = 90

    @property
    def result_id(self) -> str:
        return f"{self.run_id}:{self.name}"


class SuiteRunner(ABC):
    kind: str

    @abstractmethod
    def run(self, job: SuiteJob) -> SuiteRun:
        """Run the suite to its end (passed, failed, timed out or error): a suite that cannot run
        is a :class:`SuiteRun` in status ``error`` saying why; only transient failures of the
        place it runs raise (:class:`~orchestra.errors.TransientError`), so the run is retried."""
