"""The ``testing`` automation.

Running a suite only observes the code (results are stored, nothing is changed), so suites run
in the analysis step and the run's findings carry the outcome: failed suites, timeouts,
unreadable JUnit XML, flaky tests with a quarantine suggestion, slow tests and duration trends.

Which suites run:
- ``--param suite=NAME``: that suite;
- a push (``--param branch=B``, or a webhook/hook trigger with a branch): suites whose
  ``triggers.push`` patterns match the branch; a GitHub push webhook starts one run per matching
  suite on the pushed revision, keyed on repository, suite and revision (see :mod:`.push`);
- a scheduled run: suites whose ``triggers.schedule`` has had an occurrence since their last run;
- a manual run without ``suite``: suites with ``triggers.manual`` (the default).
With no suites configured, the run analyses the stored history and says so.
"""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from ...automation import Analysis, Automation, Collection, EventContext, EventKind, EventOutcome, RunContext
from ...errors import InputError
from ...inputs import InputDir
from ...models import Finding, Run, Severity, TriggerKind
from .settings import Suite, TestingSettings

if TYPE_CHECKING:
    from ...console.views import RunView

TriggerName = Literal["push", "schedule", "manual"]


class TestingParams(BaseModel):
    __test__ = False  # not a pytest test class

    model_config = ConfigDict(extra="forbid")

    suite: str | None = None
    repo: InputDir | None = None
    branch: str | None = None
    revision: str | None = None
    trigger: TriggerName | None = None


def trigger_of(params: TestingParams, kind: TriggerKind) -> TriggerName:
    if params.trigger:
        return params.trigger
    if kind == TriggerKind.scheduled:
        return "schedule"
    if params.branch and kind in (TriggerKind.webhook, TriggerKind.hook, TriggerKind.event):
        return "push"
    return "manual"


def suites_for_branch(settings: TestingSettings, branch: str) -> list[str]:
    """The suites whose ``triggers.push`` patterns match ``branch`` (``refs/heads/`` optional)."""
    branch = branch.removeprefix("refs/heads/")
    return [n for n, s in settings.suites.items() if any(fnmatchcase(branch, p) for p in s.triggers.push)]


def _due(ctx: RunContext, name: str, suite: Suite, now: dt.datetime) -> bool:
    from croniter import croniter

    from .results import suite_history

    if not suite.triggers.schedule:
        return False
    previous = croniter(suite.triggers.schedule, now).get_prev(dt.datetime)
    last = suite_history(ctx.store, name, limit=1)
    return not last or last[0].started_at < previous


def select_suites(ctx: RunContext, settings: TestingSettings, params: TestingParams) -> tuple[str, list[str]]:
    trigger = trigger_of(params, ctx.run.trigger_kind)
    if params.suite:
        if params.suite not in settings.suites:
            known = ", ".join(settings.suites) or "none configured"
            raise InputError(f"unknown suite {params.suite!r}; configured: {known}", where="params.suite")
        return trigger, [params.suite]
    if trigger == "push":
        if not params.branch:
            raise InputError("a push trigger needs the branch (--param branch=NAME)", where="params.branch")
        return trigger, suites_for_branch(settings, params.branch)
    if trigger == "schedule":
        now = ctx.clock.now()
        return trigger, [n for n, s in settings.suites.items() if _due(ctx, n, s, now)]
    return trigger, [n for n, s in settings.suites.items() if s.triggers.manual]


class TestingAutomation(Automation):
    __test__ = False  # not a pytest test class

    name = "testing"
    description = "run test suites with timeouts, keep JUnit results, detect flaky and slow tests"
    Settings = TestingSettings
    Params = TestingParams
    collections = (Collection(name="test_results", retention="runner.retention.runs_days"),)
    handles = frozenset({EventKind.push})

    # Injection points for the Cloud Build runner (tests, or a caller with its own session).
    cloud_build_session: Any = None
    cloud_build_endpoint: str | None = None

    @classmethod
    def handle_event(cls, kind: EventKind, event: BaseModel, ctx: EventContext) -> EventOutcome:
        """A verified GitHub push -> one run per suite whose ``triggers.push`` matches its branch."""
        from .push import handle_push

        if kind != EventKind.push:
            return EventOutcome(status="ignored", reason=f"{cls.name} does not handle {kind} events")
        return handle_push(cls.name, event, ctx)  # type: ignore[arg-type]

    def analyze(self, ctx: RunContext) -> Analysis:
        from .flaky import broken_tests, duration_trends, flaky_tests, slowest_tests
        from .results import SuiteRun, save_suite_run, suite_history
        from .runners import SuiteJob, build_runner

        settings: TestingSettings = ctx.settings
        params: TestingParams = ctx.params
        findings: list[Finding] = []
        trigger, selected = select_suites(ctx, settings, params)
        executed: list[SuiteRun] = []
        for name in selected:
            ctx.progress(f"testing: running suite {name}…")
            suite = settings.suites[name]
            runner = build_runner(suite, session=self.cloud_build_session, endpoint=self.cloud_build_endpoint)
            suite_run = runner.run(
                SuiteJob(
                    name=name,
                    suite=suite,
                    run_id=ctx.run.id,
                    clock=ctx.clock,
                    repo=params.repo,
                    revision=params.revision,
                    branch=params.branch.removeprefix("refs/heads/") if params.branch else None,
                    trigger=trigger,
                    retention_days=ctx.config.runner.retention.runs_days,
                )
            )
            suite_run = save_suite_run(ctx.store, suite_run)
            executed.append(suite_run)
            ctx.heartbeat()
            findings.extend(_suite_findings(suite_run))
        if not settings.suites:
            findings.append(
                Finding(
                    id="testing.no-suites",
                    severity=Severity.info,
                    summary="no test suites configured (automations.testing.settings.suites); "
                    "analysed the stored results only",
                )
            )
        elif not selected:
            findings.append(
                Finding(
                    id="testing.nothing-selected",
                    severity=Severity.info,
                    summary=f"no suite is triggered by this {trigger} run"
                    + (f" (branch {params.branch})" if params.branch else ""),
                    evidence={"suites": sorted(settings.suites)},
                )
            )

        # History: the configured suites, or whatever the store holds when none are configured.
        history: list[SuiteRun] = []
        names = list(settings.suites) or sorted(
            {r.suite for r in suite_history(ctx.store, None, limit=settings.flaky.history_runs * 5)}
        )
        for name in names:
            history.extend(suite_history(ctx.store, name, limit=settings.flaky.history_runs))
        flaky = flaky_tests(history, settings.flaky)
        for item in flaky[:20]:
            findings.append(
                Finding(
                    id=f"testing.flaky.{item.suite}.{item.test}"[:200],
                    severity=Severity.medium if item.quarantine else Severity.low,
                    summary=f"flaky test {item.test} ({item.suite}): flake rate {item.flake_rate:.0%} over "
                    f"{item.runs} runs; {'; '.join(item.reasons)}"
                    + ("; suggest quarantine" if item.quarantine else ""),
                    evidence=item.as_dict(),
                )
            )
        broken = broken_tests(history)
        trends = duration_trends(history, settings.trend_runs)
        for trend in trends:
            change = trend.get("change")
            if change is not None and change >= 0.2:
                findings.append(
                    Finding(
                        id=f"testing.slower.{trend['suite']}",
                        severity=Severity.low,
                        summary=f"suite {trend['suite']} got {change:.0%} slower: median "
                        f"{trend['recent_median_seconds']}s over its last runs vs {trend['previous_median_seconds']}s",
                        evidence=trend,
                    )
                )
        summary: dict[str, Any] = {
            "trigger": trigger,
            "suites_configured": sorted(settings.suites),
            "suites_run": [
                {
                    "suite": r.suite,
                    "status": r.status,
                    "reason": r.reason,
                    "revision": r.revision,
                    "branch": r.branch,
                    "counts": r.counts,
                    "duration_seconds": r.duration_seconds,
                    "result_id": r.id,
                }
                for r in executed
            ],
            "history_runs": len(history),
            "flaky": [f.as_dict() for f in flaky[:20]],
            "quarantine_suggested": [f"{f.suite}::{f.test}" for f in flaky if f.quarantine][:50],
            "broken": broken[:20],
            "slowest": slowest_tests(history, settings.slowest),
            "trends": trends,
        }
        if not settings.suites:
            summary["note"] = (
                "no suites configured: add automations.testing.settings.suites to run tests; "
                f"{len(history)} stored suite run(s) analysed"
            )
        return Analysis(findings=findings, summary=summary)

    def run_view(self, run: Run) -> RunView | None:
        """Suites run, and the flakiest tests' flake and flip rates and outcomes over runs."""
        from .view import run_view

        return run_view(run)

    def render(self, run: Run, console: Any) -> None:
        from rich.markup import escape
        from rich.table import Table

        summary = run.summary
        if summary.get("note"):
            console.print(f"[dim]{escape(summary['note'])}[/]")
        if summary.get("suites_run"):
            table = Table(title="Suites", title_justify="left")
            for col in ("suite", "status", "tests", "failed", "skipped", "time", "revision"):
                table.add_column(col)
            for s in summary["suites_run"]:
                counts = s.get("counts", {})
                table.add_row(
                    escape(s["suite"]),
                    s["status"],
                    str(counts.get("tests", 0)),
                    str(counts.get("failed", 0) + counts.get("error", 0)),
                    str(counts.get("skipped", 0)),
                    f"{s['duration_seconds']:.2f}s",
                    escape((s.get("revision") or "-")[:12]),
                )
            console.print(table)
        if summary.get("flaky"):
            table = Table(title="Flaky tests", title_justify="left")
            for col in ("test", "suite", "flake rate", "runs", "why", "quarantine"):
                table.add_column(col)
            for f in summary["flaky"]:
                table.add_row(
                    escape(f["test"]),
                    escape(f["suite"]),
                    f"{f['flake_rate']:.0%}",
                    str(f["runs"]),
                    escape("; ".join(f["reasons"])),
                    "yes" if f["quarantine"] else "",
                )
            console.print(table)
        if summary.get("slowest"):
            table = Table(title="Slowest tests", title_justify="left")
            for col in ("test", "suite", "latest", "mean", "runs"):
                table.add_column(col)
            for s in summary["slowest"]:
                table.add_row(
                    escape(s["test"]),
                    escape(s["suite"]),
                    f"{s['latest_seconds']:.3f}s",
                    f"{s['mean_seconds']:.3f}s",
                    str(s["runs"]),
                )
            console.print(table)


def _suite_findings(suite_run: Any) -> list[Finding]:
    findings: list[Finding] = []
    base = f"testing.suite.{suite_run.suite}"
    evidence = {
        "result_id": suite_run.id,
        "revision": suite_run.revision,
        "branch": suite_run.branch,
        "counts": suite_run.counts,
        "exit_code": suite_run.exit_code,
    }
    if suite_run.status == "passed":
        findings.append(
            Finding(
                id=f"{base}.passed",
                severity=Severity.info,
                summary=f"suite {suite_run.suite}: {suite_run.reason}",
                evidence=evidence,
            )
        )
        return findings
    if suite_run.status == "timed_out":
        findings.append(
            Finding(
                id=f"{base}.timeout",
                severity=Severity.high,
                summary=f"suite {suite_run.suite} {suite_run.reason}",
                evidence={**evidence, "output_tail": suite_run.output_tail[-500:]},
            )
        )
        return findings
    if suite_run.status == "error":
        findings.append(
            Finding(
                id=f"{base}.error",
                severity=Severity.high,
                summary=f"suite {suite_run.suite}: {suite_run.reason}",
                evidence={
                    **evidence,
                    "junit_problem": suite_run.junit_problem,
                    "output_tail": suite_run.output_tail[-500:],
                },
            )
        )
        return findings
    failing = [t for t in suite_run.tests if t.outcome in ("failed", "error")]
    findings.append(
        Finding(
            id=f"{base}.failed",
            severity=Severity.high,
            summary=f"suite {suite_run.suite} failed: {suite_run.reason}"
            + (": " + ", ".join(t.id for t in failing[:5]) if failing else ""),
            evidence={
                **evidence,
                "failing": [{"id": t.id, "message": (t.message or "")[:300]} for t in failing[:20]],
                **({} if failing else {"output_tail": suite_run.output_tail[-500:]}),
            },
        )
    )
    return findings
