"""The installed pre-commit hook's fast path (git and awk, no Python) against the full check.

The hook is installed with a stand-in interpreter that only records that it was started: a run
that leaves no record was decided by the fast path alone. Whatever the fast path decides must be
what ``check_staged`` decides (it only ever passes a commit), and it must decide the common case.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
from orchestra.automations.workspace import hooks
from orchestra.automations.workspace.precommit import check_staged
from orchestra.automations.workspace.settings_defaults import PRECOMMIT_MAX_KB_DEFAULT

from .helpers import commit, git, init, random_bytes, write

LIMIT = PRECOMMIT_MAX_KB_DEFAULT * 1024


@pytest.fixture
def stubbed(tmp_path: Path) -> tuple[Path, Path]:
    """A repository whose pre-commit hook starts a stand-in for Python; returns (repo, record)."""
    repo = init(tmp_path / "repo")
    commit(repo, "initial", {"README.md": "hello\n", "docs/guide.md": "Guide\n=====\n"})
    record = tmp_path / "python-started"
    stub = tmp_path / "python-stub"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {record}\nexit 0\n')
    stub.chmod(0o755)
    hooks.install(str(repo), ("pre-commit",), python=str(stub))
    return repo, record


def run_hook(repo: Path, record: Path, **env: str) -> bool:
    """Run the installed hook as git would; True when the fast path decided on its own."""
    record.unlink(missing_ok=True)
    done = subprocess.run(
        [str(repo / ".git" / "hooks" / "pre-commit")],
        cwd=repo,
        env={**os.environ, **env},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"" and done.stdout == b""
    return not record.exists()


def stage(repo: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        write(repo, path, data)
    git(repo, "add", "--", *files)


def agrees(repo: Path, record: Path) -> bool:
    """The fast path's verdict for what is staged now, checked against the full check."""
    decided = run_hook(repo, record)
    if decided:
        result = check_staged(str(repo))
        assert not result.blocked, [p.message for p in result.problems]
    return decided


def test_clean_changes_are_decided_without_python(stubbed: tuple[Path, Path]) -> None:
    repo, record = stubbed
    stage(
        repo,
        {
            "src/app.py": b"print('hello')\n",
            "README.md": b"hello\nmore\n",
            "path with spaces/and\ttab.txt": b"text\n",
            "no-newline.txt": b"<<<<<<<",  # no space after it: not a marker
            "indented.txt": b"  <<<<<<< HEAD\n  =======\n",  # not at a line start
            "at-limit.bin": random_bytes(LIMIT, 1).replace(b"\n", b"x"),
        },
    )
    git(repo, "rm", "-q", "docs/guide.md")  # a deletion has nothing to check
    assert agrees(repo, record)


@pytest.mark.parametrize(
    "files",
    [
        {"big.bin": b"x" * (LIMIT + 1)},
        {"notes.txt": b"a\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> topic\n"},
        {"end.txt": b"line\n>>>>>>> topic"},
        {"crlf.txt": b"a\r\n<<<<<<< HEAD\r\n"},
        {"underline.md": b"Title\n=======\n"},  # the full check decides (not a marker outside a merge)
    ],
    ids=["above-limit", "markers", "marker-at-end", "crlf", "underline"],
)
def test_anything_that_might_block_goes_to_the_full_check(
    stubbed: tuple[Path, Path], files: dict[str, bytes]
) -> None:
    repo, record = stubbed
    stage(repo, files)
    assert not run_hook(repo, record)
    assert record.read_text().split() == ["-m", "orchestra.automations.workspace.hook", "pre-commit"]


def test_nothing_staged_and_deletions_only_pass_without_python(stubbed: tuple[Path, Path]) -> None:
    repo, record = stubbed
    assert agrees(repo, record)
    git(repo, "rm", "-q", "README.md")
    assert agrees(repo, record)


def test_a_named_configuration_file_goes_to_the_full_check(
    stubbed: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, record = stubbed
    stage(repo, {"a.txt": b"a\n"})
    assert run_hook(repo, record)
    assert not run_hook(repo, record, CONFIG_PATH=str(tmp_path / "config.yaml"))


def test_first_commit_in_an_empty_repository(tmp_path: Path) -> None:
    repo = init(tmp_path / "fresh")
    record = tmp_path / "record"
    stub = tmp_path / "stub"
    stub.write_text(f"#!/bin/sh\necho started >> {record}\n")
    stub.chmod(0o755)
    hooks.install(str(repo), ("pre-commit",), python=str(stub))
    stage(repo, {"a.txt": b"a\n"})
    assert agrees(repo, record)
    stage(repo, {"big.bin": b"y" * (LIMIT + 1)})
    assert not run_hook(repo, record)


def test_partial_commit_is_decided_on_the_temporary_index(stubbed: tuple[Path, Path]) -> None:
    repo, record = stubbed
    stage(repo, {"big.bin": b"z" * (LIMIT + 10), "ok.txt": b"fine\n"})
    done = subprocess.run(
        ["git", "commit", "-q", "-m", "only ok", "ok.txt"], cwd=repo, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert not record.exists()  # git's temporary index holds only ok.txt: decided without Python
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["ok.txt"]


def test_a_submodule_entry_is_left_to_the_full_check(stubbed: tuple[Path, Path]) -> None:
    repo, record = stubbed
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{head},vendored")
    stage(repo, {"a.txt": b"a\n"})
    assert agrees(repo, record)


def _content(rng: random.Random) -> bytes:
    pieces = [
        b"plain text",
        b"<<<<<<< HEAD",
        b"<<<<<<<",
        b">>>>>>> branch",
        b"=======",
        b"======= ",
        b"========",
        b" =======",
        b"=======\r",
        b"x" * rng.randint(0, 200),
        bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))),
        b"\0binary",
    ]
    weights = [40, 1, 3, 1, 1, 1, 4, 4, 1, 20, 6, 1]  # a line that may block about one time in 20
    lines = rng.choices(pieces, weights, k=rng.randint(0, 8))
    body = b"\n".join(lines)
    return body + (b"\n" if rng.random() < 0.7 else b"")


def test_fast_path_agrees_with_the_full_check_on_generated_changes(stubbed: tuple[Path, Path]) -> None:
    repo, record = stubbed
    rng = random.Random(20260105)
    decided = deferred = 0
    for round_number in range(40):
        files = {f"gen/{round_number}/{index}.txt": _content(rng) for index in range(rng.randint(1, 4))}
        if rng.random() < 0.15:
            files[f"gen/{round_number}/size.bin"] = b"s" * (LIMIT + rng.choice((-1, 0, 1)))
        stage(repo, files)
        if agrees(repo, record):
            decided += 1
        else:
            deferred += 1
        git(repo, "commit", "-q", "--no-verify", "-m", f"round {round_number}")
    assert decided >= 5 and deferred >= 5, (decided, deferred)
