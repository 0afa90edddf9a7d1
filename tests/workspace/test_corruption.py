"""A damaged object database is a finding of the analysis, never a crash: real repositories with a
corrupt loose object, a pack with flipped bytes, a truncated pack index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from orchestra.automations.workspace import analysis
from orchestra.automations.workspace.analysis import analyze_repository
from orchestra.automations.workspace.history import cache_path
from orchestra.automations.workspace.integrity import MAX_LINE_CHARS, MAX_PROBLEMS, check_pack
from orchestra.automations.workspace.settings import WorkspaceSettings
from orchestra.models import Finding, Severity

from .helpers import commit, git, init, random_bytes

CORRUPT = "workspace.repository-corrupt"


def settings(**overrides: object) -> WorkspaceSettings:
    return WorkspaceSettings.model_validate(overrides)


def small_repo(path: Path, files: int = 6) -> Path:
    """main with a few files over a few commits; merged/old is merged (so actions are proposed)."""
    repo = init(path)
    for i in range(files):
        commit(repo, f"add f{i}", {f"src/f{i}.bin": random_bytes(20_000 + i, i)})
    git(repo, "branch", "merged/old", "HEAD~1")
    return repo


def loose_path(repo: Path, oid: str) -> Path:
    return repo / ".git" / "objects" / oid[:2] / oid[2:]


def overwrite(path: Path, offset: int, data: bytes) -> None:
    os.chmod(path, 0o644)  # git writes objects read-only
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def only_pack(repo: Path, suffix: str) -> Path:
    [found] = (repo / ".git" / "objects" / "pack").glob(f"pack-*{suffix}")
    return found


def corrupt_finding(result: analysis.WorkspaceAnalysis) -> Finding:
    [finding] = [f for f in result.findings if f.id == CORRUPT]
    return finding


def test_corrupt_loose_object_in_head_is_a_critical_finding(tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    oid = git(repo, "rev-parse", "HEAD:src/f2.bin").strip()
    overwrite(loose_path(repo, oid), 2, b"\x00" * 16)
    result = analyze_repository(str(repo), settings(), full=True)
    finding = corrupt_finding(result)
    assert finding.summary.startswith("repository corrupt: ")
    assert oid in finding.summary and "corrupt" in finding.summary.lower()
    assert finding.severity in (Severity.high, Severity.critical)
    integrity = result.report["integrity"]
    assert integrity["corrupt"] is True
    assert [run["command"] for run in integrity["fsck"]][-1] == "git fsck --no-progress --no-dangling"
    assert any(oid in line for run in integrity["fsck"] for line in run["problems"])
    assert any("could not read" in e and oid in e for e in integrity["analysis_errors"])
    assert result.actions == [], "nothing is optimized in a corrupt repository"
    assert any("incomplete" in note for note in result.report["notes"])


def test_corrupt_blob_only_in_history_is_found_by_the_walk_and_not_cached(tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    commit(repo, "drop f1", remove=["src/f1.bin"])
    oid = git(repo, "rev-parse", "HEAD~1:src/f1.bin").strip()
    overwrite(loose_path(repo, oid), 2, b"\xff" * 16)
    result = analyze_repository(str(repo), settings())
    finding = corrupt_finding(result)
    assert oid in finding.summary
    assert any(oid in e and "cat-file" in e for e in result.report["integrity"]["analysis_errors"])
    assert not cache_path_exists(repo), "a walk that could not read everything is not cached"


def cache_path_exists(repo: Path) -> bool:
    from orchestra.automations.workspace.repo import discover

    info, _ = discover(str(repo))
    return cache_path(info).exists()


def test_pack_with_flipped_bytes_is_a_finding(tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    git(repo, "gc", "-q")
    pack = only_pack(repo, ".pack")
    middle = pack.stat().st_size // 2
    overwrite(pack, middle, bytes(b ^ 0xFF for b in pack.read_bytes()[middle : middle + 8]))
    result = analyze_repository(str(repo), settings())
    finding = corrupt_finding(result)
    assert finding.severity in (Severity.high, Severity.critical)
    assert pack.name in finding.summary and "mismatch" in finding.summary
    integrity = result.report["integrity"]
    assert integrity["pack_problems"] == [
        f"{pack.name}: pack checksum mismatch (the file changed after git wrote it)"
    ]
    full_fsck = integrity["fsck"][-1]
    assert full_fsck["command"] == "git fsck --no-progress --no-dangling" and full_fsck["exit_code"] != 0
    assert result.actions == []


def test_truncated_pack_index_is_a_critical_finding(tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    git(repo, "gc", "-q")
    idx = only_pack(repo, ".idx")
    os.chmod(idx, 0o644)
    os.truncate(idx, idx.stat().st_size // 2)
    result = analyze_repository(str(repo), settings())
    finding = corrupt_finding(result)
    assert finding.severity == Severity.critical  # refs point at objects git can no longer find
    assert idx.name in finding.summary
    integrity = result.report["integrity"]
    assert integrity["pack_problems"] and "truncated" in integrity["pack_problems"][0]
    assert (
        integrity["fsck"][0]["command"].endswith("--connectivity-only") and integrity["fsck"][0]["exit_code"]
    )
    assert result.report["head"]["unreadable"] is True
    assert "workspace.no-commits" not in {f.id for f in result.findings}


def test_healthy_repository_verifies_packs_once_then_from_cache(tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    git(repo, "gc", "-q")
    first = analyze_repository(str(repo), settings())
    assert CORRUPT not in {f.id for f in first.findings}
    assert first.report["integrity"] == {
        "corrupt": False,
        "summary": "",
        "packs_verified": 1,
        "packs_cached": 0,
        "pack_problems": [],
        "analysis_errors": [],
        "fsck": [],
    }
    assert first.actions  # merged/old can go
    second = analyze_repository(str(repo), settings())
    assert (second.report["integrity"]["packs_verified"], second.report["integrity"]["packs_cached"]) == (
        0,
        1,
    )
    full = analyze_repository(str(repo), settings(), full=True)
    assert full.report["integrity"]["packs_verified"] == 1  # the full analysis trusts no cache


def test_a_pack_damaged_after_it_passed_is_found_again(tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    git(repo, "gc", "-q")
    assert analyze_repository(str(repo), settings()).report["integrity"]["packs_verified"] == 1
    pack = only_pack(repo, ".pack")
    stat = pack.stat()
    overwrite(pack, stat.st_size // 3, b"\x00\x01\x02\x03")
    # Same modification time as before: only the full analysis, which hashes every pack, sees it.
    os.utime(pack, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert CORRUPT not in {f.id for f in analyze_repository(str(repo), settings()).findings}
    assert CORRUPT in {f.id for f in analyze_repository(str(repo), settings(), full=True).findings}
    # A modification time that moved invalidates the cached verdict at once.
    os.utime(pack, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert CORRUPT in {f.id for f in analyze_repository(str(repo), settings()).findings}


def test_fsck_output_is_bounded(tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    names = {f"f{i:03d}.txt": f"content {i}\n" * 50 for i in range(60)}
    commit(repo, "many", names)
    for name in names:
        overwrite(loose_path(repo, git(repo, "rev-parse", f"HEAD:{name}").strip()), 2, b"\x00" * 8)
    integrity = analyze_repository(str(repo), settings()).report["integrity"]
    assert integrity["corrupt"]
    full = integrity["fsck"][-1]
    assert len(full["problems"]) == MAX_PROBLEMS and full["truncated"]
    assert all(len(line) <= MAX_LINE_CHARS for run in integrity["fsck"] for line in run["problems"])
    assert len(integrity["analysis_errors"]) <= 10
    assert all(len(line) <= MAX_LINE_CHARS for line in integrity["analysis_errors"])


def test_a_failure_fsck_does_not_explain_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = small_repo(tmp_path / "repo")

    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("a parsing bug")

    monkeypatch.setattr(analysis, "merged_branches", broken)
    with pytest.raises(ValueError, match="a parsing bug"):
        analyze_repository(str(repo), settings())


def test_check_pack_names_each_kind_of_damage(tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    git(repo, "gc", "-q")
    idx, pack = only_pack(repo, ".idx"), only_pack(repo, ".pack")
    assert check_pack(idx, pack, "sha1") is None
    original = idx.read_bytes()
    overwrite(idx, 8 + 1024 + 5, b"\x00\x00")  # an object id inside the index
    assert "index checksum mismatch" in check_pack(idx, pack, "sha1")
    overwrite(idx, 0, original)
    overwrite(pack, 0, b"JUNK")
    assert "bad header" in check_pack(idx, pack, "sha1")
