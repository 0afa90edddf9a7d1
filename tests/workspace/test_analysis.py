"""Repository analysis against real repositories: history, HEAD, partial/shallow/empty/bare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from orchestra.automations.workspace.analysis import WorkspaceAnalysis, analyze_repository
from orchestra.automations.workspace.cli import workspace_group
from orchestra.automations.workspace.history import cache_path
from orchestra.automations.workspace.settings import WorkspaceSettings
from orchestra.errors import InputError

from .helpers import MIB, blob_oid, commit, count_objects, git, init, random_bytes, write


def settings(**overrides: object) -> WorkspaceSettings:
    return WorkspaceSettings.model_validate(overrides)


def finding_ids(result: object) -> set[str]:
    return {f.id for f in result.findings}  # type: ignore[attr-defined]


def test_deleted_blob_in_history_is_largest_with_path_and_not_in_head(history_repo: Path) -> None:
    result = analyze_repository(str(history_repo), settings())
    dump_oid = blob_oid(random_bytes(5 * MIB, 1))
    top = result.report["largest_blobs"][0]
    assert top == {
        "path": "data/dump.bin",
        "size": 5 * MIB,
        "in_head": False,
        "oid": dump_oid,
        "disk_size": top["disk_size"],
        "path_in_head": False,
    }
    assert top["disk_size"] > 5 * MIB * 0.9  # random bytes do not compress
    second = result.report["largest_blobs"][1]
    assert (second["path"], second["size"], second["in_head"]) == ("assets/logo.png", 1_500_000, True)
    sizes = [b["size"] for b in result.report["largest_blobs"]]
    assert sizes == sorted(sizes, reverse=True)
    finding = next(f for f in result.findings if f.id == f"workspace.large-blob-in-history:{dump_oid}")
    assert finding.severity == "low"  # 5 MiB: above 1 MB (low), below 10 MB (medium)
    assert "filter-repo" in finding.summary
    assert f"workspace.large-blob-in-head:{blob_oid(random_bytes(1_500_000, 2))}" in finding_ids(result)


def test_severity_thresholds_come_from_settings(history_repo: Path) -> None:
    custom = settings(
        blob_severity_bytes={"low": 100, "medium": 1000, "high": 2_000_000, "critical": 4 * MIB}
    )
    result = analyze_repository(str(history_repo), custom)
    by_path = {
        f.evidence.get("path"): f.severity for f in result.findings if f.id.startswith("workspace.large-blob")
    }
    assert by_path["data/dump.bin"] == "critical"
    assert by_path["assets/logo.png"] == "medium"


def test_history_aggregates_per_directory_and_extension(history_repo: Path) -> None:
    history = analyze_repository(str(history_repo), settings()).report["history"]
    directories = {d["path"]: d for d in history["directories"]}
    assert directories["data"]["size"] == 5 * MIB
    assert directories["a/b/c"]["blobs"] == 1  # totals include subdirectories
    extensions = {e["extension"]: e for e in history["extensions"]}
    assert extensions[".bin"]["size"] == 5 * MIB
    assert extensions[".png"]["size"] == 1_500_000
    assert history["blobs"] == sum(e["blobs"] for e in history["extensions"])
    assert sum(h["blobs"] for h in history["size_histogram"]) == history["blobs"]


def test_checkout_lfs_candidates_junk_and_depth(history_repo: Path) -> None:
    result = analyze_repository(str(history_repo), settings(path_depth_warn=5, tree_entries_warn=2))
    checkout = result.report["checkout"]
    assert checkout["files"] == int(git(history_repo, "ls-files").count("\n"))
    assert checkout["largest_files"][0]["path"] == "assets/logo.png"
    assert checkout["deepest_paths"][0] == {"path": "a/b/c/d/e/f/g/h/i/j/k/l/deep.txt", "depth": 13}
    assert [c["path"] for c in checkout["lfs_candidates"]] == ["assets/logo.png"]
    junk = {j["pattern"]: j for j in checkout["committed_junk"]}
    assert junk["node_modules/"]["examples"] == ["node_modules/"]
    ids = finding_ids(result)
    assert {"workspace.lfs-candidate:assets/logo.png", "workspace.committed-junk:node_modules/"} <= ids
    assert "workspace.path-depth" in ids
    assert "workspace.tree-entries:src" in ids  # src has 3 files > 2


def test_merged_branches_exclude_current_protected_and_unstarted(history_repo: Path) -> None:
    result = analyze_repository(str(history_repo), settings())
    branches = result.report["branches"]
    assert branches["default_branch"] == "main"
    assert [b["name"] for b in branches["merged"]] == ["merged/done"]
    kept = {b["name"]: b["why"] for b in branches["kept"]}
    assert kept["release/1.0"] == "protected"
    assert kept["fresh"].startswith("no commits of its own")
    actions = {a.id: a for a in result.actions}
    action = actions["workspace.delete-merged-branch:merged/done"]
    assert action.risk == "medium"
    assert action.params["sha"] == git(history_repo, "rev-parse", "merged/done").strip()
    assert not any("wip" in a.id for a in result.actions)


def test_current_branch_is_never_proposed(history_repo: Path) -> None:
    git(history_repo, "checkout", "-q", "merged/done")
    result = analyze_repository(str(history_repo), settings())
    assert result.report["branches"]["merged"] == []
    assert {
        "name": "merged/done",
        "sha": git(history_repo, "rev-parse", "HEAD").strip(),
        "why": "checked out (current branch)",
    } in result.report["branches"]["kept"]


def test_json_output_documents_the_required_keys(history_repo: Path) -> None:
    out = CliRunner().invoke(workspace_group, ["analyze", "--repo", str(history_repo), "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    for key in ("size_bytes", "loose_objects", "packs", "largest_blobs", "findings"):
        assert key in data
    assert set(data["largest_blobs"][0]) >= {"path", "size", "in_head"}
    assert data["size_bytes"] > 5 * MIB
    assert isinstance(data["loose_objects"], int) and isinstance(data["packs"], int)


def test_text_output_and_bad_repo_exit_code(history_repo: Path, tmp_path: Path) -> None:
    out = CliRunner().invoke(workspace_group, ["analyze", "--repo", str(history_repo)])
    assert out.exit_code == 0, out.output
    assert "data/dump.bin" in out.output and "history only" in out.output
    out = CliRunner().invoke(workspace_group, ["analyze", "--repo", str(tmp_path)])
    assert out.exit_code == 2
    assert "not a git repository" in out.output


def test_not_a_repository_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a git repository"):
        analyze_repository(str(tmp_path), settings())
    with pytest.raises(InputError, match="no such directory"):
        analyze_repository(str(tmp_path / "missing"), settings())


def test_size_limit_trigger_proposes_size_optimization(history_repo: Path) -> None:
    size = analyze_repository(str(history_repo), settings()).report["size_bytes"]
    near = analyze_repository(str(history_repo), settings(size_limit_bytes=int(size / 0.9)))
    assert near.report["size_trigger"] is True
    finding = next(f for f in near.findings if f.id == "workspace.size-limit")
    assert finding.severity == "medium"
    assert [a.kind for a in near.actions if a.kind.startswith("gc")] == ["gc"]
    over = analyze_repository(str(history_repo), settings(size_limit_bytes=size // 2))
    assert next(f for f in over.findings if f.id == "workspace.size-limit").severity == "high"
    far = analyze_repository(str(history_repo), settings(size_limit_bytes=size * 2))
    assert far.report["size_trigger"] is False
    assert "workspace.size-limit" not in finding_ids(far)
    assert not any(a.kind == "gc" for a in far.actions)


def test_gc_auto_prediction_follows_git_rules(history_repo: Path) -> None:
    git(history_repo, "repack", "-q", "-d")
    commit(history_repo, "more", {"more.txt": "more\n"})
    git(history_repo, "repack", "-q", "-d")
    git(history_repo, "config", "gc.autoPackLimit", "1")
    result = analyze_repository(str(history_repo), settings())
    assert result.report["packs"] == 2
    assert result.report["gc"]["auto_would_run"] is True
    assert "gc.autoPackLimit 1" in result.report["gc"]["reasons"][0]
    assert [a.kind for a in result.actions if a.kind.startswith("gc")] == ["gc-auto"]
    git(history_repo, "config", "gc.auto", "0")  # gc.auto = 0 disables automatic gc entirely
    assert analyze_repository(str(history_repo), settings()).report["gc"]["auto_would_run"] is False


def test_loose_objects_estimate_uses_the_objects_17_sample(tmp_path: Path) -> None:
    repo = init(tmp_path / "loose")
    commit(repo, "base", {"a.txt": "a\n"})
    # Write blobs until three land in objects/17 (contents chosen by their hash, deterministic).
    found, index = [], 0
    while len(found) < 3:
        data = f"loose {index}\n".encode()
        if blob_oid(data).startswith("17"):
            found.append(data)
        index += 1
    for data in found:
        git(repo, "hash-object", "-w", "--stdin", input=data)
    git(repo, "config", "gc.auto", "512")  # threshold ceil(512/256) = 2 < 3 objects in objects/17
    result = analyze_repository(str(repo), settings())
    assert result.report["objects"]["sample_17"] == 3
    assert result.report["objects"]["estimated_loose"] == 3 * 256
    assert result.report["gc"]["auto_would_run"] is True
    git(repo, "config", "gc.auto", "1024")  # threshold 4
    assert analyze_repository(str(repo), settings()).report["gc"]["auto_would_run"] is False


def test_partial_clone_reports_missing_objects_and_downloads_nothing(
    remote_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    upstream, _ = remote_pair
    partial = tmp_path / "partial"
    git(tmp_path, "clone", "-q", "--filter=blob:none", f"file://{upstream}", str(partial))
    before = count_objects(partial)
    packs_before = sorted(p.name for p in (partial / ".git/objects/pack").iterdir())
    result = analyze_repository(str(partial), settings())
    assert count_objects(partial) == before
    assert sorted(p.name for p in (partial / ".git/objects/pack").iterdir()) == packs_before
    assert result.report["partial"] is True
    assert result.report["promisor_remotes"] == ["origin"]
    # The deleted 3 MiB blob was never downloaded: missing, so not among the largest.
    assert result.report["history"]["missing_objects"] >= 1
    assert all(b["path"] != "blob.bin" for b in result.report["largest_blobs"])
    assert "workspace.partial-clone" in finding_ids(result)
    # HEAD blobs were fetched by the checkout: their sizes are known.
    assert result.report["checkout"]["missing_blobs"] == 0
    assert result.report["checkout"]["files"] == 2


def analyze_partial_clone(upstream: Path, partial: Path, filter_arg: str) -> WorkspaceAnalysis:
    """Clone ``upstream`` with ``filter_arg`` and no checkout, analyse it, and check that the
    analysis downloaded nothing."""
    git(partial.parent, "clone", "-q", filter_arg, "--no-checkout", f"file://{upstream}", str(partial))
    before = count_objects(partial)
    result = analyze_repository(str(partial), settings())
    assert count_objects(partial) == before
    return result


def test_partial_clone_without_checkout_has_unknown_head_sizes(
    remote_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    result = analyze_partial_clone(remote_pair[0], tmp_path / "bare-partial", "--filter=blob:none")
    assert result.report["checkout"]["files"] == 2
    assert result.report["checkout"]["missing_blobs"] == 2
    assert result.report["largest_blobs"] == []
    assert result.report["history"]["missing_objects"] == 3  # README.md, src/a.py, blob.bin


def test_partial_clone_without_trees_is_analysed_offline(
    remote_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    upstream, _ = remote_pair
    result = analyze_partial_clone(upstream, tmp_path / "treeless", "--filter=tree:0")
    assert result.report["checkout"]["tree"] == git(upstream, "rev-parse", "HEAD^{tree}").strip()
    assert result.report["checkout"]["files"] == 0  # HEAD's tree is not there to list
    assert result.report["history"]["blobs"] == 0
    # The commits' root trees (the last commit restores the first one's): nothing below is known.
    assert result.report["history"]["missing_objects"] == 2
    assert "workspace.partial-clone" in finding_ids(result)


def test_shallow_clone(remote_pair: tuple[Path, Path], tmp_path: Path) -> None:
    upstream, _ = remote_pair
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{upstream}", str(shallow))
    result = analyze_repository(str(shallow), settings())
    assert result.report["shallow"] is True
    assert "workspace.shallow-clone" in finding_ids(result)
    # Only the last commit is here: the deleted big blob is outside the shallow history.
    assert {b["path"] for b in result.report["largest_blobs"]} == {"README.md", "src/a.py"}


def test_repository_without_commits(tmp_path: Path) -> None:
    repo = init(tmp_path / "empty")
    write(repo, "staged.txt", "not committed\n")
    git(repo, "add", "staged.txt")
    result = analyze_repository(str(repo), settings())
    assert result.report["head"]["unborn"] is True
    assert result.report["largest_blobs"] == []
    assert result.report["checkout"]["files"] == 0
    assert result.report["loose_objects"] == 1  # the staged blob
    assert "workspace.no-commits" in finding_ids(result)
    assert result.actions == []


def test_bare_repository(history_repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(history_repo), str(bare))
    result = analyze_repository(str(bare), settings())
    assert result.report["bare"] is True
    assert result.report["largest_blobs"][0]["path"] == "data/dump.bin"
    assert result.report["cache_dirs"] == []


def test_detached_head_and_tag_tips_are_walked(history_repo: Path) -> None:
    commit(history_repo, "tagged only", {"tagged.bin": random_bytes(2 * MIB, 9)})
    git(history_repo, "tag", "-a", "-m", "t", "v-big")
    git(history_repo, "reset", "-q", "--hard", "HEAD~1")
    git(history_repo, "checkout", "-q", "--detach", "HEAD~1")
    result = analyze_repository(str(history_repo), settings())
    assert result.report["head"]["detached"] is True
    assert "tagged.bin" in {b["path"] for b in result.report["largest_blobs"]}


def test_blob_reachable_only_from_a_tag_is_listed_without_a_path(history_repo: Path) -> None:
    # git.git, for one, tags a blob (a public key): such a blob has no path in any tree.
    data = random_bytes(6 * MIB, 12)
    oid = git(history_repo, "hash-object", "-w", "--stdin", input=data).strip()
    git(history_repo, "tag", "-a", "-m", "signing key", "key-blob", oid)
    result = analyze_repository(str(history_repo), settings())
    top = result.report["largest_blobs"][0]
    assert (top["oid"], top["path"], top["in_head"], top["path_in_head"]) == (oid, "", False, False)
    finding = next(f for f in result.findings if f.id == f"workspace.large-blob-in-history:{oid}")
    assert finding.summary.startswith(f"blob {oid} (reachable only from a tag, 6.3 MB)")


def test_incremental_history_matches_a_full_walk(history_repo: Path) -> None:
    first = analyze_repository(str(history_repo), settings())
    assert first.report["history"]["source"] == "walk"
    assert cache_path_for(history_repo).is_file()
    again = analyze_repository(str(history_repo), settings())
    assert again.report["history"]["source"] == "cache"
    assert again.report["largest_blobs"] == first.report["largest_blobs"]
    # New commits: only they are walked, and the result equals a full walk.
    commit(history_repo, "new big", {"media/new.bin": random_bytes(2 * MIB, 5)})
    git(history_repo, "branch", "-D", "merged/done")  # merged: history is not removed
    incremental = analyze_repository(str(history_repo), settings())
    assert incremental.report["history"]["source"] == "incremental"
    full = analyze_repository(str(history_repo), settings(), full=True)
    assert full.report["history"]["source"] == "walk"
    assert incremental.report["largest_blobs"] == full.report["largest_blobs"]
    for key in ("blobs", "blob_bytes", "directories", "extensions", "size_histogram"):
        assert incremental.report["history"][key] == full.report["history"][key], key
    assert "media/new.bin" in {b["path"] for b in incremental.report["largest_blobs"]}


def test_removed_history_forces_a_full_walk(history_repo: Path) -> None:
    git(history_repo, "checkout", "-q", "wip")
    commit(history_repo, "big on wip", {"wip.bin": random_bytes(2 * MIB, 6)})
    git(history_repo, "checkout", "-q", "main")
    assert "wip.bin" in {
        b["path"] for b in analyze_repository(str(history_repo), settings()).report["largest_blobs"]
    }
    git(history_repo, "branch", "-D", "wip")  # unmerged: its commits are no longer reachable
    result = analyze_repository(str(history_repo), settings())
    assert result.report["history"]["source"] == "walk"
    assert "wip.bin" not in {b["path"] for b in result.report["largest_blobs"]}
    assert any("history was removed" in n for n in result.report["notes"])


@pytest.mark.parametrize("content", ["[1]", '"text"', "{not json", '{"version": 2, "tree": 7}'])
def test_damaged_caches_are_ignored_and_rewritten(history_repo: Path, content: str) -> None:
    expected = analyze_repository(str(history_repo), settings(history_cache=False)).report
    caches = cache_path_for(history_repo).parent
    caches.mkdir()
    for name in ("workspace-history.json", "workspace-head.json"):
        (caches / name).write_text(content)
    result = analyze_repository(str(history_repo), settings())
    assert result.report["history"]["source"] == "walk"
    for key in ("largest_blobs", "checkout"):
        assert result.report[key] == expected[key], key
    again = analyze_repository(str(history_repo), settings())
    assert again.report["history"]["source"] == "cache"


def test_cache_can_be_disabled(history_repo: Path) -> None:
    result = analyze_repository(str(history_repo), settings(history_cache=False))
    assert result.report["history"]["source"] == "walk"
    assert not cache_path_for(history_repo).exists()


def test_ignored_cache_dirs_are_found_and_tracked_ones_are_not(history_repo: Path) -> None:
    commit(history_repo, "ignore", {".gitignore": "__pycache__/\n.pytest_cache/\nnode_modules/\nbuild/\n"})
    write(history_repo, "src/__pycache__/app.cpython-311.pyc", b"\0" * 1000)
    write(history_repo, ".pytest_cache/v/cache/nodeids", "[]")
    write(history_repo, "web/node_modules/.cache/babel/x.json", "{}" * 100)
    write(history_repo, "build/out.o", "o")  # ignored, but not a cache directory
    write(history_repo, "cache_untracked/__pycache__x/y", "y")  # untracked, not ignored
    result = analyze_repository(str(history_repo), settings())
    paths = {d["path"]: d for d in result.report["cache_dirs"]}
    assert set(paths) == {"src/__pycache__", ".pytest_cache", "web/node_modules/.cache"}
    assert paths["src/__pycache__"]["size_bytes"] == 1000
    action = next(a for a in result.actions if a.kind == "remove-cache-dir")
    assert sorted(action.params["dirs"]) == sorted(paths)
    assert action.risk == "low"


def test_stale_remote_refs_offline_and_with_remote_query(remote_pair: tuple[Path, Path]) -> None:
    upstream, clone = remote_pair
    git(upstream, "branch", "-D", "gone-soon")
    git(clone, "update-ref", "refs/remotes/old-fork/feature", git(clone, "rev-parse", "HEAD").strip())
    offline = analyze_repository(str(clone), settings())
    stale = {(s["remote"], s["ref"]) for s in offline.report["remote_refs"]["stale"]}
    assert stale == {("old-fork", "refs/remotes/old-fork/feature")}
    online = analyze_repository(str(clone), settings(), query_remotes=True)
    stale = {(s["remote"], s["ref"]) for s in online.report["remote_refs"]["stale"]}
    assert stale == {
        ("old-fork", "refs/remotes/old-fork/feature"),
        ("origin", "refs/remotes/origin/gone-soon"),
    }
    assert online.report["remote_refs"]["queried"] == ["origin"]
    assert {a.id for a in online.actions if a.kind == "prune-remote"} == {
        "workspace.prune-remote:old-fork",
        "workspace.prune-remote:origin",
    }


def test_unreachable_remote_is_a_finding_not_a_crash(remote_pair: tuple[Path, Path], tmp_path: Path) -> None:
    _, clone = remote_pair
    git(clone, "remote", "set-url", "origin", f"file://{tmp_path / 'nowhere'}")
    result = analyze_repository(str(clone), settings(remote_timeout_seconds=10), query_remotes=True)
    assert "workspace.remote-unreachable:origin" in finding_ids(result)


def cache_path_for(repo: Path) -> Path:
    from orchestra.automations.workspace.repo import discover

    info, _ = discover(str(repo))
    return cache_path(info)


@pytest.mark.parametrize("repo_kind", ["work", "main"])
def test_run_on_empty_params_analyses_the_current_directory(
    repo_kind: str, history_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestra.automations.workspace.settings import WorkspaceParams

    assert WorkspaceParams().repo == "."
    target = history_repo if repo_kind == "work" else history_repo / "src"
    monkeypatch.chdir(target)
    result = analyze_repository(".", settings())
    assert result.report["repo"] == str(history_repo)


def test_checkout_update_by_tree_diff_matches_a_full_pass(
    history_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestra.automations.workspace import checkout

    commit(history_repo, "fill", {f"pad/file{i:02d}.txt": "x" * (100 + i) for i in range(12)})
    small = settings(largest_count=2, lfs_min_bytes=1_000_000)  # 8 candidates for 19 files: spares in play
    analyze_repository(str(history_repo), small)
    commit(
        history_repo,
        "change everything kind of",
        {
            "media/new.bin": random_bytes(1_200_000, 11),
            "src/app.py": "print('changed')\n" * 3,
            "lib/__pycache__/m.cpython-311.pyc": b"\0" * 300,
            "logs/run.log": "log line\n" * 40,
            "z/y/x/w/v/u/t/s/r/q/p/o/n/deeper.txt": "deeper\n",
        },
        remove=["assets/logo.png", "pad/file11.txt", "node_modules/left-pad/index.js"],
    )
    (history_repo / "link").symlink_to("README.md")
    git(history_repo, "add", "link")
    git(history_repo, "commit", "-q", "-m", "symlink")

    def no_full_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("expected an update by tree diff")

    monkeypatch.setattr(checkout, "_full_state", no_full_pass)
    updated = analyze_repository(str(history_repo), small).report["checkout"]
    monkeypatch.undo()
    full = analyze_repository(str(history_repo), small.model_copy(update={"history_cache": False})).report[
        "checkout"
    ]
    assert updated == full
    assert updated["largest_files"][0]["path"] == "media/new.bin"
    assert updated["symlinks"] == 1
    assert {j["pattern"] for j in updated["committed_junk"]} == {"__pycache__/", "*.log"}
    assert [c["path"] for c in updated["lfs_candidates"]] == ["media/new.bin"]


def test_checkout_falls_back_to_a_full_pass_when_spares_run_out(history_repo: Path) -> None:
    commit(history_repo, "fill", {f"pad/file{i:02d}.txt": "x" * (100 + i) for i in range(12)})
    small = settings(largest_count=2)
    analyze_repository(str(history_repo), small)
    listed = git(history_repo, "ls-tree", "-r", "-l", "HEAD").splitlines()
    by_size = sorted(listed, key=lambda line: -int(line.split()[3]))
    biggest = [line.split("\t")[1] for line in by_size[:8]]  # every candidate
    commit(history_repo, "drop the big ones", remove=biggest)
    updated = analyze_repository(str(history_repo), small).report["checkout"]
    full = analyze_repository(str(history_repo), small.model_copy(update={"history_cache": False})).report[
        "checkout"
    ]
    assert updated == full
