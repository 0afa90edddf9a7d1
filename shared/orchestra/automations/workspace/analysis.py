"""Repository analysis: gathers the facts concurrently, then derives findings and actions.

Work that needs git runs in a small thread pool (each piece is a git subprocess plus a little
parsing), so the wall time is close to the slowest piece: the history pass, or nothing at all when
the history cache is current.

A repository git cannot fully read is a finding, not a crash: a piece that fails to read it (a
git command that fails, a size git prints as ``BAD``, an object the walk lists but cannot read)
or a pack whose checksums do not match starts a diagnosis by ``git fsck`` (``integrity.py``).
When fsck confirms the damage, the report says what was read, the finding says what git says is
wrong, and no optimization is proposed (gc and pruning could lose what is still recoverable).
When fsck finds nothing, the piece's error is raised as it was: it is not the repository's fault.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from ...models import Action, Finding, Risk, Severity
from .branches import BranchReport, RemoteRefReport, merged_branches, remote_refs
from .cachedirs import find_cache_dirs
from .checkout import Checkout, analyze_checkout
from .gitio import Git, GitError, ObjectsUnreadable, decode_path, display_path
from .history import History, load_history
from .integrity import Integrity, PackCheck, describe_failure, diagnose, verify_packs
from .listing import HISTOGRAM_LABELS, HeadListing, Once, read_listing
from .objects import ObjectStore, read_object_store
from .repo import RepoInfo, discover, locate
from .settings import WorkspaceSettings

T = TypeVar("T")

# How a piece of the analysis fails when git cannot read what it asks for: a git command fails,
# or git answers with something that does not parse (e.g. "BAD" where a size should be).
READ_FAILURES = (GitError, ObjectsUnreadable, ValueError, IndexError)

SEVERITY_ASCENDING = [Severity.low, Severity.medium, Severity.high, Severity.critical]


@dataclass
class WorkspaceAnalysis:
    report: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.report,
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "actions": [a.model_dump(mode="json") for a in self.actions],
        }


def human_bytes(size: int | float) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def blob_severity(size: int, thresholds: dict[Severity, int]) -> Severity | None:
    found = None
    for severity in SEVERITY_ASCENDING:
        limit = thresholds.get(severity)
        if limit is not None and size >= limit:
            found = severity
    return found


def _empty_objects() -> ObjectStore:
    return ObjectStore(
        loose_objects=0,
        loose_size_bytes=0,
        packs=[],
        pack_size_bytes=0,
        garbage_count=0,
        garbage_size_bytes=0,
        prune_packable=0,
        sample_17=0,
        gc_auto=0,
        gc_auto_pack_limit=0,
    )


def _take(future: Future[T], step: str, failures: list[tuple[str, Exception]], default: T) -> T:
    """The piece's result, or ``default`` with the failure recorded when git could not read."""
    try:
        return future.result()
    except READ_FAILURES as exc:
        failures.append((step, exc))
        return default


def analyze_repository(
    repo: str,
    settings: WorkspaceSettings,
    *,
    full: bool = False,
    query_remotes: bool | None = None,
    scheduled: bool = False,
) -> WorkspaceAnalysis:
    failures: list[tuple[str, Exception]] = []
    try:
        info, git = discover(repo)
        readable = True
    except READ_FAILURES as exc:
        # Refs or HEAD unreadable: only what needs no object is gathered (InputError still
        # propagates from locate() when the path is not a repository at all).
        info, git = locate(repo)
        failures.append(("refs and HEAD", exc))
        readable = False
    query = settings.query_remotes if query_remotes is None else query_remotes
    pieces = _gather(
        info, git, settings, readable=readable, full=full, scheduled=scheduled, query=query, failures=failures
    )
    integrity = _integrity(git, pieces.packs, failures, pieces.history)
    notes = _notes(pieces, integrity, failures)
    report = _report(info, settings, pieces, notes)
    report["largest_blobs"] = _largest_blobs(
        pieces.history, pieces.checkout, settings.largest_count, pieces.disk_sizes, pieces.paths_in_head
    )
    report["integrity"] = integrity.to_dict()
    if not readable:  # HEAD was not read: say so rather than "no commits yet"
        report["head"] = {**report["head"], "unborn": None, "unreadable": True}
    facts = Facts(
        info=info,
        report=report,
        objects=pieces.objects,
        checkout=pieces.checkout,
        branches=pieces.branches,
        remotes=pieces.remotes,
        cache_dirs=pieces.cache_dirs,
        readable=readable,
    )
    findings = _findings(facts, settings)
    if integrity.corrupt:
        findings.insert(0, _corrupt_finding(integrity))
        # Nothing is optimized in a damaged repository: gc and pruning could lose what is still
        # recoverable, and deleting branches on half the facts is guesswork.
        actions: list[Action] = []
    else:
        actions = _actions(facts, settings, full=full or scheduled)
    return WorkspaceAnalysis(report=report, findings=findings, actions=actions)


@dataclass
class _Pieces:
    """What the concurrent reads returned; a piece git could not read keeps its empty default."""

    objects: ObjectStore
    packs: PackCheck
    history: History
    disk_sizes: dict[str, int]
    paths_in_head: set[str]
    checkout: Checkout
    branches: BranchReport
    remotes: RemoteRefReport
    cache_dirs: list[dict[str, Any]]
    notes: list[str]


def _gather(
    info: RepoInfo,
    git: Git,
    settings: WorkspaceSettings,
    *,
    readable: bool,
    full: bool,
    scheduled: bool,
    query: bool,
    failures: list[tuple[str, Exception]],
) -> _Pieces:
    """Reads every piece concurrently; a piece git cannot read is recorded in ``failures``.

    Without readable refs and HEAD only the object database and the packs are read.
    """
    keep = settings.largest_count
    history: History = History(source="none", keep=keep)
    history_notes: list[str] = []
    disk_sizes: dict[str, int] = {}
    paths_in_head: set[str] = set()
    checkout, checkout_notes = Checkout(), list[str]()
    branches, remotes, cache_dirs = BranchReport(), RemoteRefReport(), list[dict[str, Any]]()
    # HEAD's listing is read at most once, by whichever of the checkout report and a full history
    # walk needs it first (partial clones: after the walk, which tells which blobs are missing).
    listing = None if info.partial or info.head_tree is None else Once(lambda: read_listing(git, info, set()))
    with ThreadPoolExecutor(max_workers=7, thread_name_prefix="workspace") as pool:
        objects_f = pool.submit(read_object_store, info, git)
        packs_f = pool.submit(verify_packs, info, use_cache=settings.history_cache, full=full or scheduled)
        if readable:
            history_f = pool.submit(
                _history_with_details, info, git, keep, settings.history_cache, full, listing
            )
            checkout_f = None
            if listing is not None or info.head_tree is None:
                checkout_f = pool.submit(
                    analyze_checkout,
                    git,
                    info,
                    settings,
                    missing=set(),
                    use_cache=settings.history_cache,
                    listing=listing,
                )
            caches_f = pool.submit(find_cache_dirs, git, info.toplevel, settings.cache_dir_patterns)
            branches_f = pool.submit(
                merged_branches, info, git, settings.default_branch, settings.protected_branches
            )
            remotes_f = pool.submit(
                remote_refs, info, git, query=query, timeout=settings.remote_timeout_seconds
            )
            history, history_notes, disk_sizes, paths_in_head = _take(
                history_f, "history walk", failures, (history, [], {}, set())
            )
            if checkout_f is None:  # partial clone: sizes only for blobs the walk found present
                checkout_f = pool.submit(
                    analyze_checkout, git, info, settings, missing=history.missing_oids, use_cache=False
                )
            checkout, checkout_notes = _take(checkout_f, "checkout of HEAD", failures, (checkout, []))
            branches = _take(branches_f, "merged branches", failures, branches)
            remotes = _take(remotes_f, "remote-tracking refs", failures, remotes)
            cache_dirs = _take(caches_f, "ignored cache directories", failures, cache_dirs)
        objects = _take(objects_f, "object database", failures, _empty_objects())
        packs: PackCheck = packs_f.result()
    return _Pieces(
        objects=objects,
        packs=packs,
        history=history,
        disk_sizes=disk_sizes,
        paths_in_head=paths_in_head,
        checkout=checkout,
        branches=branches,
        remotes=remotes,
        cache_dirs=cache_dirs,
        notes=history_notes + checkout_notes,
    )


def _notes(pieces: _Pieces, integrity: Integrity, failures: list[tuple[str, Exception]]) -> list[str]:
    """The report's notes: the pieces' own, the pack check's, then what could not be read."""
    notes = list(pieces.notes)
    if pieces.packs.note:
        notes.append(pieces.packs.note)
    if failures:
        notes.append(
            "incomplete: git could not read the repository for "
            + ", ".join(step for step, _ in failures)
            + " (see integrity)"
        )
    elif pieces.history.unreadable and not integrity.corrupt:
        notes.append(
            f"{len(pieces.history.unreadable)} object(s) listed by the history walk could not be read, but "
            "`git fsck` finds nothing wrong (a concurrent gc?): run the analysis again"
        )
    return notes


def _integrity(
    git: Git, packs: PackCheck, failures: list[tuple[str, Exception]], history: History
) -> Integrity:
    """The verdict on the object database; re-raises a failure git fsck does not explain."""
    evidence = [describe_failure(step, exc) for step, exc in failures]
    if history.unreadable:
        shown = ", ".join(history.unreadable[:3])
        evidence.append(
            f"history walk: git cat-file could not read {len(history.unreadable)} object(s) "
            f"that git rev-list listed: {shown}{' …' if len(history.unreadable) > 3 else ''}"
        )
    if not evidence and not packs.problems:
        return Integrity(packs=packs)
    integrity = diagnose(git, packs, evidence)
    if failures and not integrity.corrupt:
        raise failures[0][1]  # the repository is sound: this failure is not its fault
    return integrity


def _corrupt_finding(integrity: Integrity) -> Finding:
    return Finding(
        id="workspace.repository-corrupt",
        # Objects reachable from refs missing or unreadable: history is damaged. Otherwise the
        # damage is in stored content (a pack or an object that does not match its checksum).
        severity=Severity.critical if integrity.history_lost else Severity.high,
        summary=(
            f"repository corrupt: {integrity.summary}. Nothing is optimized until it is repaired "
            "(`git fsck` shows the details; re-clone, or fetch the damaged objects from a remote)"
        ),
        evidence=integrity.to_dict(),
    )


def _history_with_details(
    info: RepoInfo, git: Git, keep: int, use_cache: bool, full: bool, listing: Once[HeadListing] | None
) -> tuple[History, list[str], dict[str, int], set[str]]:
    """The history pass, then on-disk sizes and "path still in HEAD" for the top blobs only."""
    history, notes = load_history(info, git, keep=keep, use_cache=use_cache, full=full, head=listing)
    top = history.largest(keep)
    disk: dict[str, int] = {}
    in_head: set[str] = set()
    if not top:
        return history, notes, disk, in_head
    try:
        out = git.run(
            "cat-file",
            "--batch-check=%(objectname) %(objectsize:disk)",
            input="".join(f"{oid}\n" for oid, _, _ in top).encode(),
        )
        for line in out.decode().splitlines():
            oid, _, size = line.partition(" ")
            if size.isdigit():
                disk[oid] = int(size)
    except GitError as exc:
        notes.append(f"on-disk sizes of the largest blobs unavailable: {exc}")
    # A blob reachable only from a tag has no path ("").
    paths = sorted({path for _, path, _ in top if path})
    if info.head_tree and paths:
        in_head = {decode_path(p) for p in _in_head(git, info.head_tree, paths, listing)}
    return history, notes, disk, in_head


def _in_head(git: Git, tree: str, paths: list[str], listing: Once[HeadListing] | None) -> set[bytes]:
    """Which of ``paths`` name a file of HEAD: from HEAD's listing when this analysis has read it
    already (a full walk has: no second walk of HEAD's tree), else from ``git ls-tree`` of those
    paths only (a run that reuses the caches never reads the whole listing)."""
    head = listing.computed() if listing is not None else None
    if head is not None:
        return head.has_paths([path.encode("utf-8", errors="surrogateescape") for path in paths])
    out = git.run("ls-tree", "-r", "-z", "--name-only", "--full-tree", tree, "--", *paths)
    return {p for p in out.split(b"\0") if p}


def _largest_blobs(
    history: History, checkout: Checkout, keep: int, disk: dict[str, int], paths_in_head: set[str]
) -> list[dict[str, Any]]:
    out = []
    for oid, path, size in history.largest(keep):
        head_entry = checkout.top_oids.get(oid)
        in_head = head_entry is not None
        shown = head_entry[0] if head_entry else path
        out.append(
            {
                "path": display_path(shown),
                "size": size,
                "in_head": in_head,
                "oid": oid,
                "disk_size": disk.get(oid),
                # Only in history: does a file of that name still exist (with other content)?
                "path_in_head": in_head or path in paths_in_head,
            }
        )
    return out


def _report(info: RepoInfo, settings: WorkspaceSettings, pieces: _Pieces, notes: list[str]) -> dict[str, Any]:
    objects, history = pieces.objects, pieces.history
    size = objects.size_bytes
    limit = settings.size_limit_bytes
    keep = settings.largest_count
    directories = history.directories()
    return {
        "repo": info.toplevel or info.git_dir,
        "git_dir": info.git_dir,
        "bare": info.bare,
        "head": {
            "ref": info.head_ref,
            "commit": info.head_commit,
            "detached": info.head_ref is None and info.head_commit is not None,
            "unborn": info.head_commit is None,
        },
        "shallow": info.shallow,
        "partial": info.partial,
        "promisor_remotes": info.promisor_remotes,
        "size_bytes": size,
        "size_limit_bytes": limit,
        "size_ratio": round(size / limit, 4),
        "size_trigger": size >= settings.size_trigger_ratio * limit,
        "loose_objects": objects.loose_objects,
        "packs": len(objects.packs),
        "objects": objects.to_dict(),
        "gc": {
            "auto_would_run": bool(objects.gc_reasons),
            "reasons": objects.gc_reasons,
            "gc_auto": objects.gc_auto,
            "gc_auto_pack_limit": objects.gc_auto_pack_limit,
        },
        "garbage": {"count": objects.garbage_count, "size_bytes": objects.garbage_size_bytes},
        "history": {
            "source": history.source,
            "ref_tips": len(history.tips),
            "walked_tips": history.walked_tips,
            "blobs": history.blobs,
            "blob_bytes": history.blob_bytes,
            "missing_objects": history.missing,
            "size_histogram": [
                {"range": label, "blobs": count, "bytes": total}
                for label, (count, total) in zip(HISTOGRAM_LABELS, history.histogram, strict=True)
            ],
            "directories": [
                {"path": display_path(path), "blobs": count, "size": total}
                for path, (count, total) in sorted(directories.items(), key=lambda kv: (-kv[1][1], kv[0]))[
                    :keep
                ]
            ],
            "extensions": [
                {"extension": ext or "(none)", "blobs": count, "size": total}
                for ext, (count, total) in sorted(history.exts.items(), key=lambda kv: (-kv[1][1], kv[0]))[
                    :keep
                ]
            ],
        },
        "largest_blobs": [],
        "checkout": pieces.checkout.to_dict(),
        "branches": asdict(pieces.branches),
        "remote_refs": pieces.remotes.to_dict(),
        "cache_dirs": pieces.cache_dirs,
        "notes": notes,
    }


@dataclass(frozen=True)
class Facts:
    """What the analysis established about one repository: findings and actions derive from it."""

    info: RepoInfo
    report: dict[str, Any]
    objects: ObjectStore
    checkout: Checkout
    branches: BranchReport
    remotes: RemoteRefReport
    cache_dirs: list[dict[str, Any]]
    # False when refs or HEAD could not be read: the facts that depend on them are unknown.
    readable: bool = True


FindingRule = Callable[[Facts, WorkspaceSettings], list[Finding]]


def size_limit(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    report = facts.report
    size, limit = report["size_bytes"], report["size_limit_bytes"]
    evidence = {"size_bytes": size, "limit_bytes": limit, "ratio": report["size_ratio"]}
    if size >= limit:
        return [
            Finding(
                id="workspace.size-limit",
                severity=Severity.high,
                summary=f"repository objects take {human_bytes(size)}, over the {human_bytes(limit)} limit",
                evidence=evidence,
            )
        ]
    if report["size_trigger"]:
        return [
            Finding(
                id="workspace.size-limit",
                severity=Severity.medium,
                summary=(
                    f"repository objects take {human_bytes(size)}, {report['size_ratio']:.0%} of the "
                    f"{human_bytes(limit)} limit: size optimization triggered"
                ),
                evidence=evidence,
            )
        ]
    return []


def gc_auto_due(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    if not facts.objects.gc_reasons:
        return []
    return [
        Finding(
            id="workspace.gc-auto-due",
            severity=Severity.low,
            summary="`git gc --auto` would run: " + "; ".join(facts.objects.gc_reasons),
            evidence=facts.report["gc"],
        )
    ]


def garbage(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    objects = facts.objects
    if not objects.garbage_count:
        return []
    return [
        Finding(
            id="workspace.garbage",
            severity=Severity.low,
            summary=(
                f"{objects.garbage_count} garbage file(s) ({human_bytes(objects.garbage_size_bytes)}) in "
                "the object directory (see `git count-objects -v`; `git gc` removes stale temporary packs)"
            ),
            evidence=facts.report["garbage"],
        )
    ]


def _github_limit(size: int) -> str:
    if size > 100 * 1024 * 1024:
        return " GitHub rejects files over 100 MiB."
    if size > 50 * 1024 * 1024:
        return " GitHub warns about files over 50 MiB."
    return ""


def large_blobs(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    findings: list[Finding] = []
    for blob in facts.report["largest_blobs"]:
        severity = blob_severity(blob["size"], settings.blob_severity_bytes)
        if severity is None:
            continue
        github = _github_limit(blob["size"])
        if blob["in_head"]:
            findings.append(
                Finding(
                    id=f"workspace.large-blob-in-head:{blob['oid']}",
                    severity=severity,
                    summary=f"{blob['path']} is {human_bytes(blob['size'])} and is in HEAD.{github}",
                    evidence=blob,
                )
            )
            continue
        what = (
            f"{blob['path']} ({human_bytes(blob['size'])})"
            if blob["path"]
            else f"blob {blob['oid']} (reachable only from a tag, {human_bytes(blob['size'])})"
        )
        findings.append(
            Finding(
                id=f"workspace.large-blob-in-history:{blob['oid']}",
                severity=severity,
                summary=(
                    f"{what} is only in history, every clone still "
                    f"downloads it; removing it means rewriting history "
                    f"(`git filter-repo --strip-blobs-with-ids`), coordinate with everyone.{github}"
                ),
                evidence=blob,
            )
        )
    return findings


def lfs_candidates(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    return [
        Finding(
            id=f"workspace.lfs-candidate:{display_path(candidate['path'])}",
            severity=blob_severity(candidate["size"], settings.blob_severity_bytes) or Severity.low,
            summary=(
                f"{display_path(candidate['path'])} ({human_bytes(candidate['size'])}, "
                f"{candidate['reason']}) belongs in Git LFS: `git lfs track` it"
            ),
            evidence=candidate,
        )
        for candidate in facts.checkout.lfs_candidates
    ]


def committed_junk(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    return [
        Finding(
            id=f"workspace.committed-junk:{junk['pattern']}",
            severity=Severity.low,
            summary=(
                f"{junk['files']} committed file(s) ({human_bytes(junk['size_bytes'])}) match "
                f"{junk['pattern']!r}, which should be ignored, e.g. {', '.join(junk['examples'][:3])}: "
                f"`git rm -r --cached` them and add the pattern to .gitignore"
            ),
            evidence=junk,
        )
        for junk in facts.checkout.committed_junk
    ]


def checkout_files(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    checkout = facts.checkout
    if checkout.files < settings.checkout_files_warn:
        return []
    return [
        Finding(
            id="workspace.checkout-files",
            severity=Severity.medium,
            summary=f"HEAD checks out {checkout.files} files (>= {settings.checkout_files_warn})",
            evidence={"files": checkout.files, "size_bytes": checkout.size_bytes},
        )
    ]


def path_depth(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    checkout = facts.checkout
    if checkout.max_depth <= settings.path_depth_warn:
        return []
    deepest = checkout.deepest_paths[0]
    return [
        Finding(
            id="workspace.path-depth",
            severity=Severity.low,
            summary=f"paths nest {checkout.max_depth} levels deep (> {settings.path_depth_warn}): {deepest['path']}",
            evidence={"deepest_paths": checkout.deepest_paths[:5]},
        )
    ]


def wide_trees(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    return [
        Finding(
            id=f"workspace.tree-entries:{wide['path']}",
            severity=Severity.low,
            summary=f"directory {wide['path']} has {wide['entries']} entries (> {settings.tree_entries_warn})",
            evidence=wide,
        )
        for wide in facts.checkout.widest_directories
        if wide["entries"] > settings.tree_entries_warn
    ]


def merged_branches_found(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    branches = facts.branches
    if branches.merged:
        names = [b["name"] for b in branches.merged]
        return [
            Finding(
                id="workspace.merged-branches",
                severity=Severity.info,
                summary=(
                    f"{len(names)} local branch(es) fully merged into {branches.default_branch}: "
                    f"{', '.join(names[:8])}{' …' if len(names) > 8 else ''}"
                ),
                evidence={"default_branch": branches.default_branch, "branches": branches.merged},
            )
        ]
    if branches.default_branch is None and branches.local:
        return [
            Finding(
                id="workspace.no-default-branch",
                severity=Severity.info,
                summary="no default branch found (origin/HEAD, init.defaultBranch, main, master): "
                "merged branches are not checked; set automations.workspace.settings.default_branch",
            )
        ]
    return []


def stale_remote_refs(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    remotes = facts.remotes
    return [
        Finding(
            id=f"workspace.stale-remote-refs:{remote}",
            severity=Severity.low,
            summary=f"{len(refs)} stale remote-tracking ref(s) of {remote}: {remotes.reasons.get(remote, '')}",
            evidence={"remote": remote, "refs": refs},
        )
        for remote, refs in sorted(remotes.stale.items())
    ]


def unreachable_remotes(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    return [
        Finding(
            id=f"workspace.remote-unreachable:{remote}",
            severity=Severity.low,
            summary=f"could not ask remote {remote} which branches it still has: {error}",
        )
        for remote, error in sorted(facts.remotes.errors.items())
    ]


def ignored_cache_dirs(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    dirs = facts.cache_dirs
    if not dirs:
        return []
    total = sum(int(d["size_bytes"]) for d in dirs)
    return [
        Finding(
            id="workspace.cache-dirs",
            severity=Severity.info,
            summary=f"{len(dirs)} ignored cache directories hold {human_bytes(total)}",
            evidence={"dirs": dirs[:50], "size_bytes": total},
        )
    ]


def partial_clone(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    info = facts.info
    if not info.partial:
        return []
    missing = facts.report["history"]["missing_objects"]
    return [
        Finding(
            id="workspace.partial-clone",
            severity=Severity.info,
            summary=(
                f"partial clone (promisor: {', '.join(info.promisor_remotes)}): "
                f"{missing} reachable objects are not present locally; "
                "their sizes are unknown and were not downloaded"
            ),
            evidence={"missing_objects": missing},
        )
    ]


def shallow_clone(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    if not facts.info.shallow:
        return []
    return [
        Finding(
            id="workspace.shallow-clone",
            severity=Severity.info,
            summary="shallow clone: history before the shallow boundary is not analysed",
        )
    ]


def no_commits(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    # Unreadable refs and HEAD look like an empty repository: that is not "no commits yet".
    info = facts.info
    if not facts.readable or info.head_commit is not None or info.refs:
        return []
    return [
        Finding(
            id="workspace.no-commits", severity=Severity.info, summary="the repository has no commits yet"
        )
    ]


# The finding rules, in the order the report shows their findings.
FINDING_RULES: tuple[FindingRule, ...] = (
    size_limit,
    gc_auto_due,
    garbage,
    large_blobs,
    lfs_candidates,
    committed_junk,
    checkout_files,
    path_depth,
    wide_trees,
    merged_branches_found,
    stale_remote_refs,
    unreachable_remotes,
    ignored_cache_dirs,
    partial_clone,
    shallow_clone,
    no_commits,
)


def _findings(facts: Facts, settings: WorkspaceSettings) -> list[Finding]:
    return [finding for rule in FINDING_RULES for finding in rule(facts, settings)]


def _actions(facts: Facts, settings: WorkspaceSettings, *, full: bool) -> list[Action]:
    info, report, objects = facts.info, facts.report, facts.objects
    branches, remotes, cache_dirs = facts.branches, facts.remotes, facts.cache_dirs
    repo = info.toplevel or info.git_dir
    actions: list[Action] = []
    if full or report["size_trigger"]:
        why = "size above the trigger" if report["size_trigger"] else "full (scheduled) optimization"
        actions.append(
            Action(
                id="workspace.gc",
                kind="gc",
                description=f"git gc: repack and prune expired unreachable objects ({why})",
                risk=Risk.low,
                params={"repo": repo, "reason": why},
            )
        )
    elif objects.gc_reasons:
        command = settings.maintenance_command
        actions.append(
            Action(
                id="workspace.gc-auto",
                kind="gc-auto",
                description=f"git {'maintenance run' if command == 'maintenance' else 'gc'} --auto: "
                + "; ".join(objects.gc_reasons),
                risk=Risk.low,
                params={"repo": repo, "command": command},
            )
        )
    for remote, refs in sorted(remotes.stale.items()):
        actions.append(
            Action(
                id=f"workspace.prune-remote:{remote}",
                kind="prune-remote",
                description=f"delete {len(refs)} stale remote-tracking ref(s) of {remote}",
                risk=Risk.low,
                params={"repo": repo, "remote": remote, "refs": refs},
            )
        )
    for branch in branches.merged:
        actions.append(
            Action(
                id=f"workspace.delete-merged-branch:{branch['name']}",
                kind="delete-merged-branch",
                description=f"delete local branch {branch['name']} (merged into {branches.default_branch})",
                risk=Risk.medium,
                params={
                    "repo": repo,
                    "branch": branch["name"],
                    "sha": branch["sha"],
                    "default_branch": branches.default_branch,
                },
            )
        )
    if cache_dirs:
        total = sum(int(d["size_bytes"]) for d in cache_dirs)
        actions.append(
            Action(
                id="workspace.remove-cache-dirs",
                kind="remove-cache-dir",
                description=f"remove {len(cache_dirs)} ignored cache directories ({human_bytes(total)})",
                risk=Risk.low,
                params={"repo": repo, "dirs": [d["path"] for d in cache_dirs]},
            )
        )
    return actions
