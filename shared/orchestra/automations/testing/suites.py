"""Running one suite: the command with a timeout, then its JUnit XML, into a ``SuiteRun``."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections import Counter
from pathlib import Path

from ...clock import Clock
from ...errors import InputError
from ...toolkit.process import run_command
from .junit import Outcome, parse_junit
from .results import SuiteRun, SuiteStatus, TestResult
from .settings import Suite


def git_head(cwd: Path) -> tuple[str | None, str | None]:
    """(commit, branch) of the repository at ``cwd``; (None, None) outside a repository."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() or None if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    branch = git("symbolic-ref", "--quiet", "--short", "HEAD")
    return commit, branch


def resolve_cwd(suite: Suite, repo: str | None) -> Path:
    base = Path(repo) if repo else Path.cwd()
    cwd = (base / suite.cwd) if suite.cwd else base
    if not cwd.is_dir():
        raise InputError(f"working directory {cwd} does not exist", where="suite.cwd")
    return cwd


def execute_suite(
    name: str,
    suite: Suite,
    *,
    run_id: str,
    clock: Clock,
    repo: str | None = None,
    revision: str | None = None,
    branch: str | None = None,
    trigger: str = "manual",
    retention_days: int = 90,
) -> SuiteRun:
    cwd = resolve_cwd(suite, repo)
    if revision is None or branch is None:
        head, head_branch = git_head(cwd)
        revision = revision or head
        branch = branch or head_branch
    junit_path = (cwd / suite.junit) if suite.junit else None
    if junit_path is not None and junit_path.exists():
        # A file left by an earlier run must never be read as this run's results.
        junit_path.unlink()
    env = dict(os.environ)
    env.update(suite.environment)
    env.update(
        {"ORCHESTRA_SUITE": name, "ORCHESTRA_REVISION": revision or "", "ORCHESTRA_BRANCH": branch or ""}
    )
    started = clock.now()
    base = {
        "id": f"{run_id}:{name}",
        "suite": name,
        "revision": revision,
        "branch": branch,
        "trigger": trigger,
        "run_id": run_id,
        "started_at": started,
        "command": suite.command,
        "junit_path": str(junit_path) if junit_path else None,
        "expires_at": started + dt.timedelta(days=retention_days),
    }
    try:
        result = run_command(
            suite.command, timeout_seconds=suite.timeout_seconds, cwd=cwd, env=env, kill_leftovers=True
        )
    except (FileNotFoundError, PermissionError) as exc:
        return SuiteRun(
            **base,
            status=SuiteStatus.error,
            reason=f"cannot start {suite.command[0]!r}: {exc.strerror or exc} (cwd {cwd})",
            finished_at=clock.now(),
            duration_seconds=0.0,
        )
    finished = clock.now()
    output = (result.stdout_tail + ("\n" + result.stderr_tail if result.stderr_tail else ""))[-2000:]
    common = {
        **base,
        "finished_at": finished,
        "duration_seconds": round(result.duration_seconds, 3),
        "exit_code": result.returncode,
        "timed_out": result.timed_out,
        "output_tail": output,
    }
    tests: list[TestResult] = []
    problem: str | None = None
    if junit_path is not None and not result.timed_out:
        try:
            cases = parse_junit(junit_path)
        except InputError as exc:
            problem = str(exc)
        else:
            tests = [
                TestResult(
                    id=c.id,
                    outcome=c.outcome,
                    duration_seconds=c.duration_seconds,
                    message=c.message,
                    reruns_failed=c.reruns_failed,
                )
                for c in cases
            ]
    counts = dict(Counter(t.outcome for t in tests))
    counts = {k: counts.get(k, 0) for k in ("passed", "failed", "error", "skipped")} | {"tests": len(tests)}
    failing = [t for t in tests if t.outcome in (Outcome.failed, Outcome.error)]
    if result.timed_out:
        status = SuiteStatus.timed_out
        reason = f"timed out after {suite.timeout_seconds:g}s; the process group was killed"
    elif problem is not None:
        status = SuiteStatus.error
        reason = f"JUnit results unusable: {problem} (command {result.describe()})"
    elif failing:
        status = SuiteStatus.failed
        reason = f"{len(failing)} of {len(tests)} tests failed"
    elif result.returncode != 0:
        status = SuiteStatus.failed
        reason = f"command failed with {result.describe()}" + (
            " and no failing test in the JUnit XML" if junit_path is not None else ""
        )
    else:
        status = SuiteStatus.passed
        reason = f"{len(tests)} tests passed" if junit_path is not None else "command succeeded"
    return SuiteRun(**common, status=status, reason=reason, junit_problem=problem, counts=counts, tests=tests)
