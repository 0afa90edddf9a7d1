"""The hooks through real `git commit` and `git merge`, and the pre-commit check itself."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from orchestra.automations.workspace import hooks
from orchestra.automations.workspace.cli import hooks_group, workspace_group
from orchestra.automations.workspace.precommit import check_staged, conflict_lines
from orchestra.automations.workspace.settings import WorkspaceSettings
from orchestra.automations.workspace.settings_defaults import (
    PRECOMMIT_CONFLICT_MARKERS_DEFAULT,
    PRECOMMIT_MAX_KB_DEFAULT,
)
from orchestra.config import default_config_text
from orchestra.errors import InputError

from .helpers import commit, git, init, random_bytes, write

CONFLICT = "a\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> topic\n"


def try_commit(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "commit", "-q", "-m", "change", *args], cwd=repo, capture_output=True, text=True, check=False
    )


@pytest.fixture
def hooked(tmp_path: Path) -> Path:
    repo = init(tmp_path / "hooked")
    commit(repo, "initial", {"README.md": "hello\n"})
    hooks.install(str(repo))
    return repo


def test_large_staged_file_blocks_the_commit(hooked: Path) -> None:
    write(hooked, "data/big.bin", random_bytes(600 * 1024, 1))
    git(hooked, "add", "data/big.bin")
    done = try_commit(hooked)
    assert done.returncode == 1
    assert "data/big.bin: 600 KiB staged, above the 500 KiB limit" in done.stderr
    assert "git lfs track" in done.stderr and "git restore --staged" in done.stderr
    assert git(hooked, "rev-list", "--count", "HEAD").strip() == "1"


def test_conflict_marker_blocks_the_commit(hooked: Path) -> None:
    write(hooked, "notes.txt", CONFLICT)
    git(hooked, "add", "notes.txt")
    done = try_commit(hooked)
    assert done.returncode == 1
    assert "notes.txt:2: merge-conflict marker (line 2, 4, 6)" in done.stderr


def test_clean_commit_passes_quietly(hooked: Path) -> None:
    # A Markdown underline is not a conflict marker outside a merge.
    write(hooked, "doc.md", "Title\n=======\n\ntext\n")
    write(hooked, "small.bin", random_bytes(400 * 1024, 2))
    git(hooked, "add", "doc.md", "small.bin")
    done = try_commit(hooked)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""


def test_the_check_reads_the_staged_content_not_the_work_tree(hooked: Path) -> None:
    write(hooked, "notes.txt", CONFLICT)
    git(hooked, "add", "notes.txt")
    write(hooked, "notes.txt", "resolved in the work tree but not staged\n")
    assert try_commit(hooked).returncode == 1
    git(hooked, "add", "notes.txt")
    assert try_commit(hooked).returncode == 0


def test_partial_commit_checks_only_what_is_committed(hooked: Path) -> None:
    write(hooked, "big.bin", random_bytes(700 * 1024, 3))
    write(hooked, "ok.txt", "fine\n")
    git(hooked, "add", "big.bin", "ok.txt")
    # `git commit PATH` commits from a temporary index (GIT_INDEX_FILE) holding only ok.txt.
    done = try_commit(hooked, "ok.txt")
    assert done.returncode == 0, done.stderr
    assert git(hooked, "show", "--name-only", "--format=", "HEAD").split() == ["ok.txt"]


def test_lfs_tracked_files_are_exempt(hooked: Path) -> None:
    commit(hooked, "lfs attributes", {".gitattributes": "*.psd filter=lfs diff=lfs merge=lfs -text\n"})
    write(hooked, "art.psd", random_bytes(600 * 1024, 4))
    git(hooked, "add", "art.psd")
    assert try_commit(hooked).returncode == 0


def test_configured_limit_is_used(hooked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = yaml.safe_load(default_config_text())
    config["automations"]["workspace"]["settings"]["precommit_max_kb"] = 1000
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("CONFIG_PATH", str(path))
    write(hooked, "mid.bin", random_bytes(600 * 1024, 5))
    git(hooked, "add", "mid.bin")
    assert try_commit(hooked).returncode == 0
    config["automations"]["workspace"]["settings"]["precommit_max_kb"] = "lots"
    path.write_text(yaml.safe_dump(config))
    write(hooked, "mid2.bin", random_bytes(600 * 1024, 6))
    git(hooked, "add", "mid2.bin")
    done = try_commit(hooked)  # git reports any hook failure as 1; the hook itself exits 2
    assert done.returncode == 1
    assert "precommit_max_kb: expected a positive integer, got 'lots'" in done.stderr


def test_first_commit_in_an_empty_repository(tmp_path: Path) -> None:
    repo = init(tmp_path / "fresh")
    hooks.install(str(repo))
    write(repo, "big.bin", random_bytes(600 * 1024, 7))
    git(repo, "add", "big.bin")
    assert try_commit(repo).returncode == 1
    git(repo, "rm", "-q", "--cached", "big.bin")
    write(repo, "a.txt", "a\n")
    git(repo, "add", "a.txt")
    assert try_commit(repo).returncode == 0


def test_existing_hook_is_chained_and_install_is_idempotent(tmp_path: Path) -> None:
    repo = init(tmp_path / "chained")
    commit(repo, "initial", {"README.md": "hello\n"})
    hook_dir = repo / ".git" / "hooks"
    marker = repo / "local-ran"
    original = f"#!/bin/sh\necho ran >> '{marker}'\nexit 0\n"
    (hook_dir / "pre-commit").write_text(original)
    (hook_dir / "pre-commit").chmod(0o755)
    first = {r.name: r.status for r in hooks.install(str(repo))}
    assert first == {"pre-commit": "chained", "post-merge": "installed"}
    second = {r.name: r.status for r in hooks.install(str(repo))}
    assert second == {"pre-commit": "updated (chained)", "post-merge": "updated"}
    assert (hook_dir / "pre-commit.local").read_text() == original
    assert not (hook_dir / "post-merge.local").exists()
    write(repo, "a.txt", "a\n")
    git(repo, "add", "a.txt")
    assert try_commit(repo).returncode == 0
    assert marker.read_text() == "ran\n"
    # A failing local hook still blocks the commit.
    (hook_dir / "pre-commit.local").write_text("#!/bin/sh\necho local says no >&2\nexit 3\n")
    write(repo, "b.txt", "b\n")
    git(repo, "add", "b.txt")
    done = try_commit(repo)
    assert done.returncode == 1 and "local says no" in done.stderr
    removed = {r.name: r.status for r in hooks.uninstall(str(repo))}
    assert removed == {"pre-commit": "restored", "post-merge": "removed"}
    assert (hook_dir / "pre-commit").read_text() == ("#!/bin/sh\necho local says no >&2\nexit 3\n")


def test_hook_scripts_use_the_running_interpreter_and_core_hooks_path(tmp_path: Path) -> None:
    repo = init(tmp_path / "custom")
    git(repo, "config", "core.hooksPath", ".githooks")
    results = hooks.install(str(repo), python="/opt/py/bin/python3")
    assert [Path(r.path) for r in results] == [repo / ".githooks/pre-commit", repo / ".githooks/post-merge"]
    text = (repo / ".githooks/pre-commit").read_text()
    assert "exec /opt/py/bin/python3 -m orchestra.automations.workspace.hook pre-commit" in text
    assert os.stat(repo / ".githooks/pre-commit").st_mode & stat.S_IXUSR


def test_hooks_never_import_the_repository_own_orchestra_package(tmp_path: Path) -> None:
    # The hooks run in the work tree: a package of the same name there (a Python project called
    # orchestra, or a hostile branch just merged) must not shadow ours or run its code.
    repo = init(tmp_path / "shadow")
    ran = tmp_path / "shadow-code-ran"
    commit(repo, "initial", {"orchestra/__init__.py": f"open({str(ran)!r}, 'w').close()\n"})
    hooks.install(str(repo))
    write(repo, "a.txt", "a\n")
    git(repo, "add", "a.txt")
    done = try_commit(repo)
    assert done.returncode == 0, done.stderr
    assert not ran.exists()
    write(repo, "big.bin", random_bytes(600 * 1024, 4))
    git(repo, "add", "big.bin")
    assert try_commit(repo).returncode == 1  # our check ran
    assert not ran.exists()


def test_install_refuses_to_clobber_two_foreign_hooks(tmp_path: Path) -> None:
    repo = init(tmp_path / "two")
    for name in ("pre-commit", "pre-commit.local"):
        (repo / ".git/hooks" / name).write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(InputError, match="merge them by hand"):
        hooks.install(str(repo))


def test_post_merge_hook_optimizes_after_a_real_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRA_STORE")  # the hook then keeps runs in the git directory
    repo = init(tmp_path / "merging")
    commit(repo, "initial", {"README.md": "hello\n", ".gitignore": "__pycache__/\n"})
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, "topic work", {"topic.txt": "t\n"})
    git(repo, "checkout", "-q", "main")
    commit(repo, "main work", {"main.txt": "m\n"})
    git(repo, "update-ref", "refs/remotes/old-fork/x", git(repo, "rev-parse", "HEAD").strip())
    write(repo, "pkg/__pycache__/m.cpython-311.pyc", b"\0" * 2048)
    hooks.install(str(repo))
    done = subprocess.run(
        ["git", "merge", "--no-ff", "-m", "merge topic", "topic"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "orchestra workspace (post-merge): 2 optimization(s) applied" in done.stderr
    assert not (repo / "pkg/__pycache__").exists()
    assert "refs/remotes/old-fork/x" not in git(repo, "for-each-ref", "--format=%(refname)")
    # Level 1 (the environment default): the merged branch is proposed, never deleted.
    assert "1 not applied (medium risk needs automation level 2" in done.stderr
    assert "refs/heads/topic" in git(repo, "for-each-ref", "--format=%(refname)")
    # The run is recorded in the repository's git directory, not in the work tree.
    assert (repo / ".git/orchestra/state.db").is_file()
    assert git(repo, "status", "--porcelain") == ""


def test_post_merge_never_fails_the_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = init(tmp_path / "broken-config")
    commit(repo, "initial", {"README.md": "hello\n"})
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, "topic", {"t.txt": "t\n"})
    git(repo, "checkout", "-q", "main")
    hooks.install(str(repo))
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments: [not, a, mapping\n")
    monkeypatch.setenv("CONFIG_PATH", str(bad))
    done = subprocess.run(
        ["git", "merge", "-q", "topic"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "orchestra workspace (post-merge): not run: invalid configuration" in done.stderr
    assert (repo / "t.txt").exists()


def test_check_command_json_and_exit_codes(hooked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(hooked)
    out = CliRunner().invoke(workspace_group, ["check", "--analyze-only", "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.output) == {"blocked": False, "staged": 0, "problems": []}
    write(hooked, "big.bin", random_bytes(520 * 1024, 8))
    git(hooked, "add", "big.bin")
    out = CliRunner().invoke(workspace_group, ["check", "--analyze-only", "--format", "json"])
    assert out.exit_code == 1
    problem = json.loads(out.output)["problems"][0]
    assert problem["kind"] == "large-file" and problem["size"] == 520 * 1024
    assert CliRunner().invoke(workspace_group, ["check", "--max-kb", "600"]).exit_code == 0


def test_hooks_cli(tmp_path: Path) -> None:
    repo = init(tmp_path / "cli")
    out = CliRunner().invoke(hooks_group, ["install", "--repo", str(repo), "--hook", "pre-commit"])
    assert out.exit_code == 0 and "pre-commit: installed" in out.output
    assert not (repo / ".git/hooks/post-merge").exists()
    out = CliRunner().invoke(hooks_group, ["uninstall", "--repo", str(repo), "--format", "json"])
    assert json.loads(out.output)[0]["status"] == "removed"
    out = CliRunner().invoke(hooks_group, ["install", "--repo", str(tmp_path / "nope")])
    assert out.exit_code == 2


@pytest.mark.parametrize(
    ("content", "in_merge", "lines"),
    [
        (b"<<<<<<< HEAD\nx\n", False, [1]),
        (b"a\n>>>>>>> branch\n", False, [2]),
        (b"Title\n=======\n", False, []),
        (b"Title\n=======\n", True, [2]),
        (b"x\r\n=======\r\n<<<<<<< a\r\n", False, [2, 3]),
        (b"  <<<<<<< indented is fine\n", False, []),
        (b"<<<<<<<no space\n", False, []),
        (b"\0binary <<<<<<< \n<<<<<<< x\n", False, []),
    ],
)
def test_conflict_marker_rules(content: bytes, in_merge: bool, lines: list[int]) -> None:
    assert conflict_lines(content, lambda: in_merge) == lines


def test_lone_separator_during_a_merge_is_blocked(hooked: Path) -> None:
    git(hooked, "checkout", "-q", "-b", "other")
    commit(hooked, "other", {"README.md": "other\n"})
    git(hooked, "checkout", "-q", "main")
    commit(hooked, "mine", {"README.md": "mine\n"})
    subprocess.run(["git", "merge", "other"], cwd=hooked, capture_output=True, check=False)
    write(hooked, "README.md", "mine\n=======\nother\n")  # markers half removed
    git(hooked, "add", "README.md")
    result = check_staged(str(hooked))
    assert [p.kind for p in result.problems] == ["conflict-marker"]


def test_fast_path_defaults_match_settings_and_packaged_config() -> None:
    defaults = WorkspaceSettings()
    packaged = yaml.safe_load(default_config_text())["automations"]["workspace"]["settings"]
    assert defaults.precommit_max_kb == PRECOMMIT_MAX_KB_DEFAULT == packaged["precommit_max_kb"]
    assert (
        defaults.precommit_conflict_markers
        == PRECOMMIT_CONFLICT_MARKERS_DEFAULT
        == packaged["precommit_conflict_markers"]
    )
    # Every packaged setting is valid and equal to the model default (one source of truth).
    model = WorkspaceSettings.model_validate(packaged).model_dump()
    assert {key: model[key] for key in packaged} == {key: defaults.model_dump()[key] for key in packaged}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a: " + b"[" * 100_000, "nesting deeper than"),
        (b"automations: !!python/object/apply:os.system [touch pwned]\n", "tag"),
        (b"\xff\xfe binary", "not valid UTF-8"),
        (b"- just\n- a list\n", "expected a mapping of sections"),
        (b"automations: [workspace]\n", None),  # not a mapping there: the defaults apply
    ],
)
def test_pre_commit_reads_a_hostile_configuration_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, expected: str | None
) -> None:
    repo = init(tmp_path / "repo")
    commit(repo, "initial", {"README.md": "hello\n"})
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    monkeypatch.setenv("CONFIG_PATH", str(config))
    monkeypatch.chdir(repo)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from orchestra.automations.workspace.precommit import main; sys.exit(main())",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "Traceback" not in done.stderr
    if expected is None:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (repo / "pwned").exists()
