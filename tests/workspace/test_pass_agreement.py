"""The history pass as the analysis runs it agrees with the plain pass on every report and finding.

The analysis' pass takes HEAD's blobs (and whether a history blob's path still exists in HEAD)
from HEAD's listing, which the checkout report reads anyway. The plain pass walks HEAD's tree as
the walk's first tip, sizes every blob with ``git cat-file`` and asks ``git ls-tree`` which paths
still exist. Both run cold (no caches) on the same repositories; reports, findings, actions and
the history cache they write must be identical.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from orchestra.automations.workspace import analysis
from orchestra.automations.workspace.history import cache_path
from orchestra.automations.workspace.listing import Once, read_listing
from orchestra.automations.workspace.repo import discover
from orchestra.automations.workspace.settings import WorkspaceSettings

from .helpers import MIB, commit, git, init, random_bytes, write
from .test_history_walk import tangled  # noqa: F401 - the fixture, asked for by name below


def _cold(repo: Path, settings: WorkspaceSettings) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A cold analysis' JSON report and the history cache it left (None: not written)."""
    shutil.rmtree(repo / ".git" / "orchestra", ignore_errors=True)
    result = analysis.analyze_repository(str(repo), settings)
    info, _ = discover(str(repo))
    path = cache_path(info)
    cache = json.loads(path.read_text()) if path.exists() else None
    return result.to_json(), cache


def _plain_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis with the plain pass: HEAD's tree walked and sized like any other tree."""
    load_history, in_head = analysis.load_history, analysis._in_head

    def plain_history(*args: Any, **kwargs: Any) -> Any:
        return load_history(*args, **{**kwargs, "head": None})

    def plain_in_head(git_: Any, tree: str, paths: list[str], listing: Any) -> set[bytes]:
        return in_head(git_, tree, paths, None)

    monkeypatch.setattr(analysis, "load_history", plain_history)
    monkeypatch.setattr(analysis, "_in_head", plain_in_head)


def assert_passes_agree(repo: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> dict[str, Any]:
    settings = WorkspaceSettings(**overrides)
    report, cache = _cold(repo, settings)
    with monkeypatch.context() as patched:
        _plain_pass(patched)
        plain_report, plain_cache = _cold(repo, settings)
    assert report["history"]["source"] == plain_report["history"]["source"] == "walk"
    assert report["findings"] == plain_report["findings"]
    assert report["largest_blobs"] == plain_report["largest_blobs"]
    assert report["history"] == plain_report["history"]
    assert report == plain_report
    assert cache == plain_cache
    return report


@pytest.fixture
def eventful(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Large blobs added and deleted, a large one in HEAD, a path re-used with other content,
    renames, the same content at two paths, a submodule where a large file was, a blob reachable
    only from a tag, an unmerged branch, unreachable objects (a dropped commit, a loose blob)."""
    repo = init(tmp_path / "eventful")
    for step, (name, when) in enumerate((("base", 1), ("big", 2), ("drop", 3))):
        monkeypatch.setenv("GIT_AUTHOR_DATE", f"{1_700_000_000 + when * 100} +0000")
        monkeypatch.setenv("GIT_COMMITTER_DATE", f"{1_700_000_000 + when * 100} +0000")
        if name == "base":
            files: dict[str, bytes | str] = {
                f"src/m{i % 4}/f{i}.py": random_bytes(200 + 31 * i, i) for i in range(40)
            }
            files.update({"docs/same.txt": "same\n", "other/same.txt": "same\n", "README.md": "# r\n"})
            commit(repo, name, files)
        elif name == "big":
            commit(
                repo,
                name,
                {
                    "data/dump.bin": random_bytes(3 * MIB, 100),
                    "media/video.mp4": random_bytes(2 * MIB, 101),
                    "vendor/lib": random_bytes(1_200_000, 102),
                    "keep/model.bin": random_bytes(1_100_000, 103),
                },
            )
        else:
            commit(repo, name, {"data/dump.bin": "small now\n"}, remove=["media/video.mp4", "vendor/lib"])
            assert step == 2
    git(repo, "mv", "src/m0/f0.py", "src/moved.py")
    git(repo, "commit", "-q", "-m", "rename")
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{head},vendor/lib")
    git(repo, "commit", "-q", "-m", "submodule where a large file was")
    git(repo, "checkout", "-q", "-b", "wip")
    commit(repo, "unmerged", {"wip/huge.iso": random_bytes(1_500_000, 104)})
    git(repo, "checkout", "-q", "main")
    tag_blob = git(repo, "hash-object", "-w", "--stdin", input=random_bytes(1_300_000, 105)).strip()
    git(repo, "tag", "only-blob", tag_blob)
    commit(repo, "dropped later", {"dropped.bin": random_bytes(1_400_000, 106)})
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "hash-object", "-w", "--stdin", input=random_bytes(1_600_000, 107))  # loose, unreachable
    return repo


def test_passes_agree_on_the_history_fixture(history_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = assert_passes_agree(history_repo, monkeypatch)
    assert any(f["id"].startswith("workspace.large-blob-in-history:") for f in report["findings"])


def test_passes_agree_on_renames_copies_odd_names_and_a_submodule(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_passes_agree(request.getfixturevalue("tangled"), monkeypatch, largest_count=5)


def test_passes_agree_on_a_clone_with_remote_refs(
    remote_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, clone = remote_pair
    assert_passes_agree(clone, monkeypatch)


@pytest.mark.parametrize("keep", [3, 20])
def test_passes_agree_on_large_deleted_and_unreachable_blobs(
    eventful: Path, monkeypatch: pytest.MonkeyPatch, keep: int
) -> None:
    report = assert_passes_agree(eventful, monkeypatch, largest_count=keep)
    blobs = {b["path"]: b for b in report["largest_blobs"]}
    assert blobs["data/dump.bin"]["in_head"] is False and blobs["data/dump.bin"]["path_in_head"] is True
    if keep >= 20:
        # The blob replaced by a submodule: its path names no file of HEAD any more, but the plain
        # pass's `git ls-tree` lists the submodule there, and so does the listing.
        assert blobs["vendor/lib"]["path_in_head"] is True
        assert blobs["media/video.mp4"]["path_in_head"] is False
        assert blobs[""]["in_head"] is False  # reachable only from the tag
        assert "dropped.bin" not in blobs, "unreachable objects are not history"
    assert report["integrity"]["corrupt"] is False


def test_passes_agree_when_a_history_blob_is_missing(eventful: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    oid = git(eventful, "rev-parse", "main~3:media/video.mp4").strip()
    (eventful / ".git" / "objects" / oid[:2] / oid[2:]).unlink()
    report = assert_passes_agree(eventful, monkeypatch)
    corrupt = report["findings"][0]
    assert corrupt["id"] == "workspace.repository-corrupt" and corrupt["severity"] == "critical"
    assert any(oid in e for e in report["integrity"]["analysis_errors"])
    assert report["actions"] == []


def test_head_listing_answers_which_paths_exist_as_ls_tree_does(eventful: Path) -> None:
    write(eventful, "tab\there.txt", "tab\n")
    write(
        eventful,
        "weird-\udcff.txt".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape"),
        "x\n",
    )
    git(eventful, "add", "-A")
    git(eventful, "commit", "-q", "-m", "odd names")
    info, git_ = discover(str(eventful))
    assert info.head_tree is not None
    listing = read_listing(git_, info, set())
    # Every path in history (root trees are listed with an empty one).
    history_paths = {
        line.partition(b" ")[2] for line in git_.run("rev-list", "--objects", "--all").splitlines()
    }
    history_paths.discard(b"")
    asked = sorted(history_paths | {b"src", b"src/m1", b"vendor/lib", b"nowhere.txt", b"tab\there.txt"})
    out = git_.run(
        "ls-tree",
        "-r",
        "-z",
        "--name-only",
        "--full-tree",
        info.head_tree,
        "--",
        *(p.decode("utf-8", "surrogateescape") for p in asked),
    )
    expected = {p for p in out.split(b"\0") if p} & set(asked)
    found = listing.has_paths(asked)
    assert found == expected
    assert b"vendor/lib" in found and b"src" not in found and b"nowhere.txt" not in found
    assert Once(lambda: listing).get().has_paths([]) == set()


def test_a_missing_blob_of_head_is_a_critical_finding(eventful: Path) -> None:
    oid = git(eventful, "rev-parse", "HEAD:keep/model.bin").strip()
    (eventful / ".git" / "objects" / oid[:2] / oid[2:]).unlink()
    report, cache = _cold(eventful, WorkspaceSettings())
    corrupt = report["findings"][0]
    assert corrupt["id"] == "workspace.repository-corrupt" and corrupt["severity"] == "critical"
    assert oid in corrupt["summary"] or any(oid in e for e in report["integrity"]["analysis_errors"])
    assert cache is None, "a walk that could not read everything is not cached"
    assert report["actions"] == []


def test_a_run_that_reuses_the_caches_never_reads_heads_listing(
    eventful: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a run that reads HEAD's listing anyway (a full walk, a new HEAD tree) answers
    ``path_in_head`` from it; a warm run asks ``git ls-tree`` about the few paths instead."""
    reads: list[str] = []
    original = analysis.read_listing

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append("listing")
        return original(*args, **kwargs)

    monkeypatch.setattr(analysis, "read_listing", counted)
    cold, _ = _cold(eventful, WorkspaceSettings())
    assert reads == ["listing"]
    warm = analysis.analyze_repository(str(eventful), WorkspaceSettings()).to_json()
    assert reads == ["listing"], "the warm run read HEAD's whole listing"
    assert warm["history"]["source"] == "cache"
    assert warm["largest_blobs"] == cold["largest_blobs"]
    assert any(blob["path_in_head"] and not blob["in_head"] for blob in warm["largest_blobs"])
