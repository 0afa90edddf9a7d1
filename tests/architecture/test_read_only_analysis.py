"""The built-in automations whose analysis only reads (``Automation.read_only_analysis``).

For each one that opts in, through the runner on its usual inputs: analysing writes nothing to
the state store and changes no file (inputs, targets, outputs, the working directory, HOME and
the temporary directory; for ``workspace``, only its own caches under ``$GIT_COMMON_DIR/orchestra``,
rewritten to the same facts); a scheduled run that changes nothing is stored in one commit (its
trigger's claim and event record with it); and a run that applies an action is claimed, stored
``running`` under a lease, before the change. ``testing`` and ``deployment`` act while analysing
and must stay out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from orchestra.automation import Automation
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import AutomationConfig, Config, default_config_text, parse_config
from orchestra.inputs import Origin
from orchestra.models import ActionStatus, Mode, RunStatus, TriggerKind
from orchestra.registry import Registry
from orchestra.runner import Claim, Runner, RunRequest
from orchestra.store.base import EVENTS, RUNS, StateStore

from tests.runner.deferred_automations import with_record
from tests.store.spy import record_writes

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "shared/orchestra/samples"
METRICS = REPO_ROOT / "tests/fixtures/metrics"
MANIFEST = REPO_ROOT / "tests/fixtures/cost/staging-admin.yaml"
READ_ONLY = ("performance", "infrastructure", "cost", "ai-services", "workspace")
# Analysing runs test suites and records their results / requests deployments: an effect that
# must happen once per trigger, so their runs are claimed before they analyse.
ACTS_WHILE_ANALYSING = ("testing", "deployment")
# Where the workspace analysis keeps its caches (relative to the repository's .git).
WORKSPACE_CACHES = "orchestra"


# ----------------------------------------------------------------------------- the flags


def test_exactly_the_automations_whose_analysis_only_reads_opt_in() -> None:
    registry = Registry()
    flagged = {name for name in registry.names() if _class(registry, name).read_only_analysis}
    assert flagged == set(READ_ONLY)


@pytest.mark.parametrize("name", ACTS_WHILE_ANALYSING)
def test_automations_that_act_while_analysing_are_claimed_first(name: str) -> None:
    cls = _class(Registry(), name)
    assert cls.read_only_analysis is False, (
        f"{name} acts while it analyses (runs suites / requests deployments): its run must be "
        "claimed before it analyses, so read_only_analysis must stay False"
    )


def _class(registry: Registry, name: str) -> type[Automation]:
    cls = registry.get_class(name)
    assert cls is not None, f"built-in automation {name} is not registered"
    return cls


# ----------------------------------------------------------------------------- inputs


@dataclasses.dataclass
class Case:
    """One run's inputs: the automation's settings and parameters."""

    settings: dict[str, Any]
    params: dict[str, Any]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Everything a run could write to lives under this directory: its inputs and targets, the
    working directory, HOME and the temporary directory. Git has a fixed identity and no user or
    system configuration."""
    root = tmp_path / "work"
    for name in ("inputs", "cwd", "home", "tmp"):
        (root / name).mkdir(parents=True)
    gitconfig = root / "home" / "gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n[gc]\n\tautoDetach = false\n")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "CONFIG_PATH", "ORCHESTRA_COST_ENGINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.invalid")
        monkeypatch.setenv(f"GIT_{role}_DATE", "2026-01-05T12:00:00Z")
    monkeypatch.setenv("TMPDIR", str(root / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(root / "tmp"))
    monkeypatch.chdir(root / "cwd")
    yield root


def _copy(source: Path, work: Path, name: str | None = None) -> str:
    target = work / "inputs" / (name or source.name)
    shutil.copyfile(source, target)
    return str(target)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _commit(repo: Path, message: str, files: dict[str, str]) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
        _git(repo, "add", "--", path)
    _git(repo, "commit", "-q", "-m", message)


def _repository(work: Path, *, merged_branch: bool) -> str:
    repo = work / "inputs" / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _commit(repo, "initial", {"README.md": "# Project\n", "src/app.py": "print('hello')\n"})
    if merged_branch:
        _git(repo, "checkout", "-q", "-b", "feature/done")
        _commit(repo, "feature", {"src/feature.py": "x = 1\n"})
        _git(repo, "checkout", "-q", "main")
        _git(repo, "merge", "-q", "--no-ff", "-m", "merge feature", "feature/done")
    return str(repo)


def _cpu_csv(work: Path) -> str:
    lines = (METRICS / "ec2_cpu_utilization_825cc2.csv").read_text().splitlines()
    target = work / "inputs" / "cpu.csv"
    target.write_text("\n".join(lines[:2001]) + "\n")  # the header and 2,000 samples
    return str(target)


def _performance(work: Path, acts: bool) -> Case:
    params: dict[str, Any] = {"metrics": {"cpu": _cpu_csv(work)}}
    if acts:  # without a service YAML there is nothing to act on: recommendations only
        params["service_yaml"] = _copy(SAMPLES / "performance/service.yaml", work)
    return Case({"settle_seconds": 0}, params)


def _infrastructure(work: Path, acts: bool) -> Case:
    params: dict[str, Any] = {
        "metrics": {"request_count": _copy(METRICS / "elb_request_count_8c0756.csv", work)},
        "service_yaml": _copy(SAMPLES / "performance/service.yaml", work),
    }
    if not acts:
        params["forecast_only"] = True
    return Case({"instance_capacity_rps": 0.25, "settle_seconds": 0}, params)


def _cost(work: Path, acts: bool) -> Case:
    service: dict[str, Any] = {
        "name": "staging-admin",
        "min_instances": 3,
        "vcpu": 2,
        "memory_gib": 4,
        "billing": "instance",
    }
    if acts:  # without a manifest the idle minimum instances are a finding only
        service["manifest"] = _copy(MANIFEST, work)
    traffic = SAMPLES / "cost/metrics/staging-admin/request_count.csv"
    params = {
        "billing": _copy(SAMPLES / "cost/billing.csv", work),
        "metrics": {"request_count": _copy(traffic, work, "staging-admin-requests.csv")},
    }
    return Case({"services": [service]}, params)


def _ai_services(work: Path, acts: bool) -> Case:
    settings = yaml.safe_load((SAMPLES / "ai_services/settings.yaml").read_text())
    settings["policy_path"] = str(work / "inputs" / "out" / "ai-policy.yaml")
    lines = (SAMPLES / "ai_services/usage.jsonl").read_text().splitlines(keepends=True)
    usage = work / "inputs" / "usage.jsonl"
    # A handful of requests is below every opportunity's minimum: nothing to propose.
    usage.write_text("".join(lines if acts else lines[:5]))
    return Case(settings, {"usage": str(usage)})


def _workspace(work: Path, acts: bool) -> Case:
    return Case({}, {"repo": _repository(work, merged_branch=acts)})


CASES: dict[str, Callable[[Path, bool], Case]] = {
    "performance": _performance,
    "infrastructure": _infrastructure,
    "cost": _cost,
    "ai-services": _ai_services,
    "workspace": _workspace,
}


# ----------------------------------------------------------------------------- what was written


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root``: its kind and content hash (directories: empty)."""
    out: dict[str, tuple[str, str]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(directory, name), root)] = ("dir", "")
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                out[os.path.relpath(path, root)] = ("link", os.readlink(path))
            else:
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                out[os.path.relpath(path, root)] = ("file", digest)
    return out


def changed(before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


@dataclasses.dataclass
class Recorder:
    """Every store write (by primitive) and the analyses around them, in order; the files each
    analysis changed under the work directory."""

    events: list[str] = dataclasses.field(default_factory=list)
    files: list[list[str]] = dataclasses.field(default_factory=list)
    stored_at_apply: list[dict[str, Any] | None] = dataclasses.field(default_factory=list)

    def writes_during_analysis(self) -> list[str]:
        inside, found = False, []
        for event in self.events:
            if event == "analyze:start":
                inside = True
            elif event == "analyze:end":
                inside = False
            elif inside:
                found.append(event)
        return found

    def writes(self) -> list[str]:
        return [e for e in self.events if not e.startswith(("analyze:", "apply"))]


def record(store: StateStore, cls: type[Automation], work: Path, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    record_writes(store, monkeypatch, recorder.events)
    analyze, apply = cls.analyze, cls.apply

    def analyzing(self: Automation, ctx: Any) -> Any:
        before = snapshot(work)
        recorder.events.append("analyze:start")
        try:
            return analyze(self, ctx)
        finally:
            recorder.events.append("analyze:end")
            recorder.files.append(changed(before, snapshot(work)))

    def applying(self: Automation, ctx: Any, action: Any) -> Any:
        recorder.events.append("apply")
        recorder.stored_at_apply.append(store.get(RUNS, ctx.run.id))
        return apply(self, ctx, action)

    monkeypatch.setattr(cls, "analyze", analyzing)
    monkeypatch.setattr(cls, "apply", applying)
    return recorder


# ----------------------------------------------------------------------------- the runner


def runner_for(store: StateStore, name: str, case: Case) -> tuple[Runner, type[Automation]]:
    config: Config = parse_config(default_config_text())
    settings = {**config.automation(name).settings, **case.settings}
    config.automations[name] = AutomationConfig(settings=settings)
    cls = _class(Registry(), name)
    registry = Registry({name: f"{cls.__module__}:{cls.__qualname__}"})
    runner = Runner(
        config,
        store,
        clock=FakeClock(dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)),
        ids=RandomIds(3),
        registry=registry,
        heartbeat_in_background=False,
    )
    return runner, cls


def prepared(
    name: str, store: StateStore, work: Path, monkeypatch: pytest.MonkeyPatch, *, acts: bool
) -> tuple[Case, Runner, Recorder]:
    """``name``'s usual inputs (``acts``: ones that call for a change), a runner for them on
    ``store``, and the recorder of what its runs write and change."""
    case = CASES[name](work, acts)
    runner, cls = runner_for(store, name, case)
    return case, runner, record(store, cls, work, monkeypatch)


def request(name: str, case: Case, trigger: str, *, mode: Mode, level: int) -> RunRequest:
    return RunRequest(
        task=name,
        environment="development",
        mode=mode,
        automation_level=level,
        params=case.params,
        trigger_kind=TriggerKind.scheduled,
        trigger_id=trigger,
        requested_by="scheduler",
        # The continuous controller's schedule: a local trigger, so the inputs may be files.
        origin=Origin.local,
    )


def delivered(base: RunRequest, clock: FakeClock) -> RunRequest:
    """``base`` as a Pub/Sub delivery makes it: with the message's claim and event record."""
    claim_id = f"scheduled-messages:{base.trigger_id}"
    claim = Claim(EVENTS, claim_id, {"id": claim_id, "fingerprint": "f"}, lambda: True)
    return dataclasses.replace(with_record(base, clock, "scheduled"), claim=claim)


def workspace_caches_only(name: str, paths: list[str]) -> list[str]:
    """``paths`` outside what an analysis may write: nothing, or for ``workspace`` its caches."""
    if name != "workspace":
        return paths
    caches = os.path.join("inputs", "repo", ".git", WORKSPACE_CACHES)
    return [p for p in paths if p != caches and not p.startswith(caches + os.sep)]


# ----------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", READ_ONLY)
def test_analysis_writes_nothing(name: str, sqlite_store: StateStore, work: Path, monkeypatch) -> None:
    case, runner, recorder = prepared(name, sqlite_store, work, monkeypatch, acts=True)
    first = runner.submit(request(name, case, f"{name}-look", mode=Mode.analyze, level=0)).run
    assert first.status == RunStatus.succeeded, first.reason
    assert first.actions, f"{name}: the usual inputs propose changes (none applied in analyze mode)"
    again = runner.submit(request(name, case, f"{name}-look-again", mode=Mode.analyze, level=0)).run
    assert again.status == RunStatus.succeeded, again.reason
    assert recorder.writes_during_analysis() == []
    assert recorder.writes() == ["_create_all", "_create_all"], "each run is stored once, at its end"
    assert recorder.events.count("analyze:start") == 2
    assert all(workspace_caches_only(name, files) == [] for files in recorder.files), recorder.files
    assert recorder.files[1] == [], (
        f"{name}: a second analysis of the same inputs changed {recorder.files[1]}"
    )


def test_workspace_caches_are_its_only_files_and_hold_the_same_facts_again(
    sqlite_store: StateStore, work: Path, monkeypatch
) -> None:
    case, runner, recorder = prepared("workspace", sqlite_store, work, monkeypatch, acts=True)
    caches = Path(case.params["repo"]) / ".git" / WORKSPACE_CACHES
    # Scheduled runs are full: the history is walked again and its cache written again.
    for trigger in ("first", "second"):
        run = runner.submit(request("workspace", case, trigger, mode=Mode.analyze, level=0)).run
        assert run.status == RunStatus.succeeded, run.reason
        if trigger == "first":
            written = {p.name: p.read_bytes() for p in caches.iterdir()}
    assert recorder.files[0] and all(
        p.startswith(os.path.join("inputs", "repo", ".git", "orchestra")) for p in recorder.files[0]
    )
    assert {p.name: p.read_bytes() for p in caches.iterdir()} == written
    assert recorder.files[1] == []


@pytest.mark.parametrize("name", READ_ONLY)
def test_a_scheduled_run_that_changes_nothing_is_one_commit(
    name: str, store: StateStore, work: Path, monkeypatch
) -> None:
    case, runner, recorder = prepared(name, store, work, monkeypatch, acts=False)
    assert isinstance(runner.clock, FakeClock)
    # A scheduled workspace run is the weekly full optimisation: it always proposes git gc, which
    # level 0 leaves unapplied; the others are given inputs that need no change at level 3.
    level = 0 if name == "workspace" else 3
    outcome = runner.submit(
        delivered(request(name, case, f"{name}-quiet", mode=Mode.apply, level=level), runner.clock)
    )
    run = outcome.run
    assert run.status == RunStatus.succeeded and not outcome.duplicate, run.reason
    assert "apply" not in recorder.events
    if name != "workspace":
        assert run.actions == [], f"{name}: these inputs should need no change: {run.actions}"
    assert recorder.writes() == ["_create_all"], "the run, its trigger's claim and its record: one commit"
    stored = store.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.succeeded and stored.lease is None
    assert store.get(EVENTS, f"scheduled-messages:{name}-quiet") is not None
    assert outcome.record is not None and store.get_event(f"scheduled:{name}-quiet") == outcome.record


@pytest.mark.parametrize("name", READ_ONLY)
def test_a_run_that_applies_is_claimed_before_the_change(
    name: str, store: StateStore, work: Path, monkeypatch
) -> None:
    case, runner, recorder = prepared(name, store, work, monkeypatch, acts=True)
    run = runner.submit(request(name, case, f"{name}-acts", mode=Mode.apply, level=3)).run
    applied = [a for a in run.actions if a.status == ActionStatus.applied]
    assert applied, f"{name}: expected an applied action, got {[(a.id, a.status) for a in run.actions]}"
    assert recorder.writes_during_analysis() == []
    first_apply = recorder.events.index("apply")
    created = {"_create", "_create_all"} & set(recorder.events[:first_apply])
    assert created, "the run is created (claimed) before the first change"
    stored = recorder.stored_at_apply[0]
    assert stored is not None and stored["status"] == "running", stored
    assert stored["lease"] and stored["lease"]["owner"].startswith(f"{runner.owner}#")
