"""Running git without subprocess: pipes both ways, exit codes, timeouts, bad directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from orchestra.automations.workspace.gitio import Git, GitError
from orchestra.errors import InputError

from .helpers import commit, git, init


@pytest.fixture(autouse=True, params=["posix_spawn", "subprocess"])
def starter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: as on Linux and macOS, and as where posix_spawnp is missing (Windows)."""
    if request.param == "subprocess":
        monkeypatch.delattr(os, "posix_spawnp")


def test_input_and_output_larger_than_a_pipe_both_ways(tmp_path: Path) -> None:
    repo = init(tmp_path / "pipes")
    commit(repo, "one", {"a.txt": "a\n"})
    oid = git(repo, "rev-parse", "HEAD:a.txt").strip()
    lines = 20_000  # ~800 KB in and ~1 MB out: blocks unless both pipes are served together
    out = Git(repo).run(
        "cat-file",
        "--batch-check=%(objectname) %(objecttype) %(objectsize)",
        input=f"{oid}\n".encode() * lines,
    )
    assert out == f"{oid} blob 2\n".encode() * lines


def test_no_input_is_end_of_file_and_errors_carry_stderr(tmp_path: Path) -> None:
    repo = init(tmp_path / "plain")
    assert Git(repo).text("hash-object", "--stdin").strip() == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    with pytest.raises(GitError) as caught:
        Git(repo).run("rev-parse", "--verify", "no-such-ref")
    assert caught.value.returncode == 128
    assert "Needed a single revision" in caught.value.stderr
    assert Git(repo).run("rev-parse", "--verify", "-q", "no-such-ref", ok=(0, 1)) == b""


def test_a_command_past_its_timeout_is_killed(tmp_path: Path) -> None:
    repo = init(tmp_path / "slow")
    with pytest.raises(GitError, match="timed out after 0.2 s"):
        Git(repo).run("nap", config=["alias.nap=!sleep 3"], timeout=0.2)


def test_a_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        Git(tmp_path / "absent").run("status")
