"""The history pass against a plain walk: HEAD's blobs taken from HEAD's listing, ties, columns."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from orchestra.automations.workspace import history
from orchestra.automations.workspace.listing import Once, read_listing
from orchestra.automations.workspace.repo import discover

from .helpers import commit, git, init, random_bytes, write


def dated(monkeypatch: pytest.MonkeyPatch, when: int) -> None:
    for name in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.setenv(name, f"{when} +0000")


def aggregates(result: history.History) -> dict[str, object]:
    return {
        "blobs": result.blobs,
        "blob_bytes": result.blob_bytes,
        "dirs": result.dirs,
        "exts": result.exts,
        "histogram": result.histogram,
        "top": result.top,
    }


@pytest.fixture
def tangled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HEAD (main, newest) shares blobs with an older branch that renamed and copied them; HEAD
    has duplicate contents, empty files, a tab and a non-UTF-8 byte in names, a symlink and a
    submodule; an annotated tag points at a commit."""
    repo = init(tmp_path / "tangled")
    dated(monkeypatch, 1_700_000_000)
    files: dict[str, bytes | str] = {
        f"src/m{i % 3}/f{i}.py": random_bytes(300 + i * 37, i) for i in range(30)
    }
    files.update({"a/empty.txt": "", "b/empty.txt": "", "dup1.txt": "same\n", "c/dup2.TXT": "same\n"})
    files.update({"tab\there.txt": "tab\n", "big/one.bin": random_bytes(400_000, 90)})
    commit(repo, "base", files)
    write(
        repo, "weird-\udcff.txt".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape"), "x\n"
    )
    (repo / "link").symlink_to("dup1.txt")
    git(repo, "add", "-A")
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{head},vendor/sub")
    git(repo, "commit", "-q", "-m", "odd entries")
    git(repo, "checkout", "-q", "-b", "side")
    dated(monkeypatch, 1_700_000_100)
    (repo / "moved").mkdir()
    git(repo, "mv", "big/one.bin", "moved/one.bin")
    copy = (repo / "src/m0/f3.py").read_bytes()
    commit(repo, "side renames and copies", {"copies/f3.py": copy, "side.bin": random_bytes(300_000, 91)})
    git(repo, "checkout", "-q", "main")
    for step in range(4):
        dated(monkeypatch, 1_700_000_200 + step)
        commit(repo, f"step {step}", {f"src/m1/f{step}.py": random_bytes(900 + step, 50 + step)})
    git(repo, "tag", "-a", "-m", "release", "v1", "HEAD~1")
    return repo


@pytest.mark.parametrize("keep", [2, 5, 100])
def test_head_listing_in_place_of_head_tree_equals_a_plain_walk(tangled: Path, keep: int) -> None:
    info, git_ = discover(str(tangled))
    tips = history.current_tips(info)
    listing = Once(lambda: read_listing(git_, info, set()))
    from_listing = history.full_walk(info, git_, tips, keep, listing)
    plain = history.full_walk(info, git_, tips, keep, None)
    assert aggregates(from_listing) == aggregates(plain)
    assert from_listing.largest(keep) == plain.largest(keep)


def test_blobs_in_head_count_at_their_head_path_whatever_branch_is_newer(
    tangled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(tangled, "checkout", "-q", "side")  # older than main, which has the blobs elsewhere
    git(tangled, "tag", "tree-tag", "main~2^{tree}")  # trees given directly come before commits
    info, git_ = discover(str(tangled))
    tips = history.current_tips(info)
    listing = Once(lambda: read_listing(git_, info, set()))
    from_listing = history.full_walk(info, git_, tips, 100, listing)
    plain = history.full_walk(info, git_, tips, 100, None)
    assert aggregates(from_listing) == aggregates(plain)
    moved = git(tangled, "rev-parse", "side:moved/one.bin").strip()
    assert from_listing.top[moved] == ["moved/one.bin", 400_000]  # the newer main has big/one.bin
    assert from_listing.dirs["moved"] == [1, 400_000]
    assert "big" not in from_listing.dirs


def test_largest_blobs_tied_in_size_keep_the_smallest_ids_full_or_incremental(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = init(tmp_path / "ties")
    dated(monkeypatch, 1_700_000_000)
    commit(repo, "one", {f"t/{i}.bin": random_bytes(5000, 100 + i) for i in range(6)})
    info, git_ = discover(str(repo))
    first, _ = history.load_history(info, git_, keep=4, use_cache=True, full=False)
    dated(monkeypatch, 1_700_000_100)
    commit(repo, "two", {f"u/{i}.bin": random_bytes(5000, 200 + i) for i in range(6)})
    info, git_ = discover(str(repo))
    incremental, _ = history.load_history(info, git_, keep=4, use_cache=True, full=False)
    full, _ = history.load_history(info, git_, keep=4, use_cache=False, full=True)
    assert (first.source, incremental.source, full.source) == ("walk", "incremental", "walk")
    every = git(repo, "rev-list", "--objects", "--all", "--filter=object:type=blob", "--no-object-names")
    smallest = sorted(line for line in every.split() if line)[:4]
    assert sorted(incremental.top) == sorted(full.top) == smallest


def test_head_listing_columns_follow_ls_tree(tangled: Path) -> None:
    info, git_ = discover(str(tangled))
    listing = read_listing(git_, info, set())
    raw = subprocess.run(
        ["git", "ls-tree", "-r", "-l", "-z", "HEAD"], cwd=tangled, capture_output=True, check=True
    )
    entries = [item.partition(b"\t") for item in raw.stdout.split(b"\0")[:-1]]
    blobs = [(meta.split(), path) for meta, _, path in entries if meta.split()[1] == b"blob"]
    assert [path for _, path in blobs] == listing.paths
    assert [int(meta[3]) for meta, _ in blobs] == listing.sizes
    assert [meta[2] for meta, _ in blobs] == listing.oids
    assert (listing.symlinks, listing.submodules, listing.missing) == (1, 1, 0)
    assert b"tab\there.txt" in listing.paths and b"weird-\xff.txt" in listing.paths
