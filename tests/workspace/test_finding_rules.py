"""The workspace finding rules, each run on facts built by hand (no repository, no git)."""

from __future__ import annotations

from typing import Any

from orchestra.automations.workspace.analysis import (
    FINDING_RULES,
    Facts,
    _findings,
    large_blobs,
    no_commits,
)
from orchestra.automations.workspace.branches import BranchReport, RemoteRefReport
from orchestra.automations.workspace.checkout import Checkout
from orchestra.automations.workspace.objects import ObjectStore
from orchestra.automations.workspace.repo import RepoInfo
from orchestra.automations.workspace.settings import WorkspaceSettings
from orchestra.models import Severity

MIB = 1024 * 1024
SETTINGS = WorkspaceSettings()


def objects(garbage_count: int = 0) -> ObjectStore:
    return ObjectStore(
        loose_objects=0,
        loose_size_bytes=0,
        packs=[],
        pack_size_bytes=0,
        garbage_count=garbage_count,
        garbage_size_bytes=4096 * garbage_count,
        prune_packable=0,
        sample_17=0,
        gc_auto=0,
        gc_auto_pack_limit=0,
    )


def facts(
    *,
    size: int = 10,
    limit: int = 100,
    shallow: bool = False,
    head_commit: str | None = "c" * 40,
    readable: bool = True,
    garbage_count: int = 0,
    largest_blobs: list[dict[str, Any]] | None = None,
    branches: BranchReport | None = None,
) -> Facts:
    info = RepoInfo(
        path="/repo",
        toplevel="/repo",
        git_dir="/repo/.git",
        common_dir="/repo/.git",
        bare=False,
        shallow=shallow,
        head_ref="refs/heads/main",
        head_commit=head_commit,
        head_tree=None,
    )
    report = {
        "size_bytes": size,
        "size_limit_bytes": limit,
        "size_ratio": round(size / limit, 4),
        "size_trigger": False,
        "gc": {},
        "garbage": {"count": garbage_count},
        "largest_blobs": largest_blobs or [],
        "history": {"missing_objects": 0},
    }
    return Facts(
        info=info,
        report=report,
        objects=objects(garbage_count),
        checkout=Checkout(),
        branches=branches or BranchReport(),
        remotes=RemoteRefReport(),
        cache_dirs=[],
        readable=readable,
    )


def blob(size: int, *, in_head: bool = True, path: str = "data/big.bin") -> dict[str, Any]:
    return {"path": path, "size": size, "in_head": in_head, "oid": "b" * 40}


def test_findings_follow_the_order_of_the_rule_table() -> None:
    many = facts(
        size=200,
        shallow=True,
        garbage_count=2,
        head_commit=None,
        branches=BranchReport(default_branch=None, local=3),
    )
    ids = [f.id for f in _findings(many, SETTINGS)]
    assert ids == [
        "workspace.size-limit",
        "workspace.garbage",
        "workspace.no-default-branch",
        "workspace.shallow-clone",
        "workspace.no-commits",
    ]
    # Each finding comes from the rule at its place in the table.
    rule_of = {f.id: rule.__name__ for rule in FINDING_RULES for f in rule(many, SETTINGS)}
    positions = [[r.__name__ for r in FINDING_RULES].index(rule_of[i]) for i in ids]
    assert positions == sorted(positions)


def test_quiet_facts_give_no_finding() -> None:
    assert _findings(facts(), SETTINGS) == []


def test_no_commits_is_not_claimed_when_refs_could_not_be_read() -> None:
    assert [f.id for f in no_commits(facts(head_commit=None), SETTINGS)] == ["workspace.no-commits"]
    assert no_commits(facts(head_commit=None, readable=False), SETTINGS) == []
    assert no_commits(facts(), SETTINGS) == []


def test_large_blob_findings_name_githubs_limits_and_where_the_blob_lives() -> None:
    found = large_blobs(
        facts(
            largest_blobs=[
                blob(120 * MIB),
                blob(60 * MIB, in_head=False),
                blob(2 * MIB, in_head=False, path=""),
                blob(1000),  # below every threshold: no finding
            ]
        ),
        SETTINGS,
    )
    assert [(f.id.split(":")[0], f.severity) for f in found] == [
        ("workspace.large-blob-in-head", Severity.critical),
        ("workspace.large-blob-in-history", Severity.high),
        ("workspace.large-blob-in-history", Severity.low),
    ]
    assert found[0].summary.endswith("GitHub rejects files over 100 MiB.")
    assert found[1].summary.endswith("GitHub warns about files over 50 MiB.")
    assert "reachable only from a tag" in found[2].summary
    assert "GitHub" not in found[2].summary
