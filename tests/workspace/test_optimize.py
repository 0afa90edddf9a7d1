"""Optimizations on real repositories: applied through the runner, verified with
`git count-objects -v` and refs before/after, and rolled back from the stored action alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from orchestra.automations.workspace import actions
from orchestra.automations.workspace.actions import UnsafeAction
from orchestra.automations.workspace.analysis import analyze_repository
from orchestra.automations.workspace.cli import workspace_group
from orchestra.automations.workspace.settings import WorkspaceSettings
from orchestra.inputs import Origin
from orchestra.models import Action

from .helpers import commit, count_objects, git, write


def _prepare_repo(repo: Path) -> None:
    """Two packs over gc.autoPackLimit=1, an orphaned remote namespace, an ignored cache dir."""
    commit(repo, "ignore", {".gitignore": "__pycache__/\n"})
    git(repo, "repack", "-q", "-d")
    commit(repo, "more", {"src/more.py": "m = 1\n"})
    git(repo, "repack", "-q", "-d")
    git(repo, "config", "gc.autoPackLimit", "1")
    git(repo, "update-ref", "refs/remotes/old-fork/topic", git(repo, "rev-parse", "wip").strip())
    write(repo, "src/__pycache__/app.cpython-311.pyc", b"\0" * 4096)


def _refs(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname)").split())


def _optimize(repo: Path, *args: str) -> dict:
    """`workspace optimize` as JSON; every optimization here succeeds, so the exit code is 0 (a
    skipped or proposed action is not a failure)."""
    out = CliRunner().invoke(workspace_group, ["optimize", "--repo", str(repo), "--format", "json", *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_optimize_level_2_applies_everything_safely(history_repo: Path) -> None:
    _prepare_repo(history_repo)
    before = count_objects(history_repo)
    assert before["packs"] == 2
    data = _optimize(history_repo, "--automation-level", "2")
    run = data["run"]
    assert run["status"] == "succeeded", (run["reason"], run["error"])
    statuses = {a["id"]: a["status"] for a in run["actions"]}
    assert statuses == {
        "workspace.gc-auto": "applied",
        "workspace.prune-remote:old-fork": "applied",
        "workspace.delete-merged-branch:merged/done": "applied",
        # Created at main's tip, never committed to, and main has moved on: merged too.
        "workspace.delete-merged-branch:fresh": "applied",
        "workspace.remove-cache-dirs": "applied",
    }
    after = count_objects(history_repo)
    assert after["packs"] == 1  # gc --auto consolidated the packs
    gc = next(a for a in run["actions"] if a["kind"] == "gc-auto")
    assert gc["result"]["before"]["packs"] == 2 and gc["result"]["after"]["packs"] == 1
    assert gc["verified"] is True and gc["rollback"] == {}
    refs = _refs(history_repo)
    assert "refs/heads/merged/done" not in refs and "refs/remotes/old-fork/topic" not in refs
    assert {"refs/heads/main", "refs/heads/wip", "refs/heads/release/1.0"} <= refs
    assert not (history_repo / "src/__pycache__").exists()
    assert (history_repo / "src/app.py").exists()
    branch = next(a for a in run["actions"] if a["id"].endswith("merged/done"))
    assert branch["rollback"]["sha"] == branch["params"]["sha"]  # stored before apply
    sizes = data["sizes"]
    assert sizes["objects_after_bytes"] <= sizes["objects_before_bytes"]
    assert sizes["cache_dirs_freed_bytes"] == 4096


def test_level_1_keeps_merged_branches(history_repo: Path) -> None:
    _prepare_repo(history_repo)
    run = _optimize(history_repo, "--automation-level", "1")["run"]
    branch = next(a for a in run["actions"] if a["id"].endswith("merged/done"))
    assert branch["status"] == "skipped"
    assert "level 2" in branch["reason"]
    assert "refs/heads/merged/done" in _refs(history_repo)
    assert {a["status"] for a in run["actions"] if a["kind"] != "delete-merged-branch"} == {"applied"}


def test_analyze_mode_changes_nothing(history_repo: Path) -> None:
    _prepare_repo(history_repo)
    refs, objects = _refs(history_repo), count_objects(history_repo)
    run = _optimize(history_repo, "--mode", "analyze", "--automation-level", "3")["run"]
    assert {a["status"] for a in run["actions"]} == {"proposed"}
    assert _refs(history_repo) == refs
    assert count_objects(history_repo) == objects
    assert (history_repo / "src/__pycache__").exists()


def test_full_optimization_runs_git_gc(history_repo: Path) -> None:
    git(history_repo, "hash-object", "-w", "--stdin", input=b"dangling but recent\n")
    loose_before = count_objects(history_repo)["count"]
    assert loose_before > 0
    run = _optimize(history_repo, "--full", "--automation-level", "1")["run"]
    gc = next(a for a in run["actions"] if a["kind"] == "gc")
    assert gc["status"] == "applied" and gc["verified"] is True
    after = count_objects(history_repo)
    # Reachable loose objects are packed; the recent unreachable blob is kept (gc.pruneExpire).
    assert after["count"] < loose_before
    assert gc["result"]["verification"]["reduced"] is True


def _action(repo: Path, kind: str) -> Action:
    result = analyze_repository(str(repo), WorkspaceSettings())
    return next(a for a in result.actions if a.kind == kind)


def test_branch_rollback_recreates_ref_and_config(history_repo: Path) -> None:
    git(history_repo, "config", "branch.merged/done.remote", "origin")
    git(history_repo, "config", "branch.merged/done.merge", "refs/heads/merged/done")
    action = _action(history_repo, "delete-merged-branch")
    sha = action.params["sha"]
    action.rollback = actions.prepare(action)
    assert action.rollback["config"] == {
        "branch.merged/done.remote": ["origin"],
        "branch.merged/done.merge": ["refs/heads/merged/done"],
    }
    action.result = actions.apply(action)
    assert actions.verify(action).ok
    assert "refs/heads/merged/done" not in _refs(history_repo)
    assert git(history_repo, "config", "--get", "branch.merged/done.remote", check=False) == ""
    # A new process would see only the stored action: rebuild it from JSON.
    stored = Action.model_validate_json(action.model_dump_json())
    actions.rollback(stored)
    actions.rollback(stored)  # safe twice
    assert git(history_repo, "rev-parse", "refs/heads/merged/done").strip() == sha
    assert git(history_repo, "config", "--get-all", "branch.merged/done.remote").split() == ["origin"]
    assert not actions.verify(stored).ok  # the branch is back: the deletion no longer holds


def test_branch_that_moved_or_got_checked_out_is_not_deleted(history_repo: Path) -> None:
    action = _action(history_repo, "delete-merged-branch")
    action.rollback = actions.prepare(action)
    git(history_repo, "checkout", "-q", "merged/done")
    with pytest.raises(UnsafeAction, match="checked out"):
        actions.apply(action)
    commit(history_repo, "moved", {"moved.txt": "x\n"})
    git(history_repo, "checkout", "-q", "main")
    with pytest.raises(UnsafeAction, match="moved since analysis"):
        actions.apply(action)
    assert "refs/heads/merged/done" in _refs(history_repo)


def test_prune_remote_rollback_restores_refs(remote_pair: tuple[Path, Path]) -> None:
    upstream, clone = remote_pair
    git(upstream, "branch", "-D", "gone-soon")
    result = analyze_repository(str(clone), WorkspaceSettings(), query_remotes=True)
    action = next(a for a in result.actions if a.id == "workspace.prune-remote:origin")
    sha = action.params["refs"]["refs/remotes/origin/gone-soon"]
    action.rollback = actions.prepare(action)
    action.result = actions.apply(action)
    assert action.result["deleted"] == ["refs/remotes/origin/gone-soon"]
    assert actions.verify(action).ok
    assert "refs/remotes/origin/gone-soon" not in _refs(clone)
    assert "refs/remotes/origin/topic" in _refs(clone)
    actions.rollback(action)
    assert git(clone, "rev-parse", "refs/remotes/origin/gone-soon").strip() == sha


def test_prune_skips_a_ref_that_moved_since_analysis(remote_pair: tuple[Path, Path]) -> None:
    upstream, clone = remote_pair
    git(upstream, "branch", "-D", "gone-soon")
    result = analyze_repository(str(clone), WorkspaceSettings(), query_remotes=True)
    action = next(a for a in result.actions if a.id == "workspace.prune-remote:origin")
    git(clone, "update-ref", "refs/remotes/origin/gone-soon", git(clone, "rev-parse", "HEAD~1").strip())
    action.rollback = actions.prepare(action)
    action.result = actions.apply(action)
    assert action.result == {"deleted": [], "skipped_moved": ["refs/remotes/origin/gone-soon"]}
    assert "refs/remotes/origin/gone-soon" in _refs(clone)


def test_cache_dir_removal_rechecks_that_git_still_ignores_it(history_repo: Path) -> None:
    commit(history_repo, "ignore", {".gitignore": "__pycache__/\n.pytest_cache/\n"})
    write(history_repo, "src/__pycache__/a.pyc", b"x" * 10)
    write(history_repo, ".pytest_cache/README.md", "cache")
    action = _action(history_repo, "remove-cache-dir")
    assert sorted(action.params["dirs"]) == [".pytest_cache", "src/__pycache__"]
    commit(history_repo, "track pycache now", {".gitignore": ".pytest_cache/\n"})
    action.rollback = actions.prepare(action)
    action.result = actions.apply(action)
    assert [r["path"] for r in action.result["removed"]] == [".pytest_cache"]
    assert action.result["skipped"] == [{"path": "src/__pycache__", "why": "is no longer ignored by git"}]
    assert (history_repo / "src/__pycache__/a.pyc").exists()
    assert not (history_repo / ".pytest_cache").exists()
    assert actions.verify(action).ok


def test_gc_verify_compares_count_objects(history_repo: Path) -> None:
    git(history_repo, "repack", "-q", "-d")
    commit(history_repo, "more", {"x.txt": "x\n"})
    git(history_repo, "repack", "-q", "-d")
    git(history_repo, "config", "gc.autoPackLimit", "1")
    action = _action(history_repo, "gc-auto")
    assert actions.prepare(action) == {}
    action.result = actions.apply(action)
    assert action.result["command"] == "git maintenance run --auto --quiet"
    verification = actions.verify(action)
    assert verification.ok and verification.evidence["reduced"] is True
    assert verification.evidence["now"]["packs"] == 1
    assert actions.rollback(action) == {"note": "nothing to undo"}


def test_scheduled_run_is_the_full_optimization_and_renders(history_repo: Path, tmp_path: Path) -> None:
    from orchestra.automations.workspace.plugin import WorkspaceAutomation
    from orchestra.config import load_config
    from orchestra.models import Mode, TriggerKind
    from orchestra.runner import Runner, RunRequest
    from orchestra.store.sqlite import SqliteStateStore
    from rich.console import Console

    analyze_repository(str(history_repo), WorkspaceSettings())  # leaves a history cache behind
    store = SqliteStateStore(tmp_path / "state.db")
    run = (
        Runner(load_config(), store)
        .submit(
            RunRequest(
                origin=Origin.local,
                task="workspace",
                mode=Mode.apply,
                automation_level=1,
                params={"repo": str(history_repo)},
                trigger_kind=TriggerKind.scheduled,
            )
        )
        .run
    )
    assert run.status == "succeeded", run.reason
    assert run.summary["history"]["source"] == "walk"  # the weekly run walks everything again
    gc = next(a for a in run.actions if a.kind == "gc")
    assert gc.status == "applied" and gc.verified
    assert count_objects(history_repo)["packs"] == 1
    stored = store.get_run(run.id)
    assert stored is not None and stored.summary["largest_blobs"][0]["path"] == "data/dump.bin"
    console = Console(record=True, width=140)
    WorkspaceAutomation().render(stored, console)
    text = console.export_text()
    assert "data/dump.bin" in text and "history only" in text and "of 1.0 GB" in text
