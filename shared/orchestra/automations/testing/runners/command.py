"""The local command runner: the suite's command as a real process (see :mod:`..suites`)."""

from __future__ import annotations

from ..results import SuiteRun
from ..suites import execute_suite
from .base import SuiteJob, SuiteRunner


class CommandRunner(SuiteRunner):
    kind = "command"

    def run(self, job: SuiteJob) -> SuiteRun:
        return execute_suite(
            job.name,
            job.suite,
            run_id=job.run_id,
            clock=job.clock,
            repo=job.repo,
            revision=job.revision,
            branch=job.branch,
            trigger=job.trigger,
            retention_days=job.retention_days,
        )
