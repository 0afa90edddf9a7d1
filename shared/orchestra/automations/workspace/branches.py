"""Local branches merged into the default branch, and stale remote-tracking refs."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .gitio import Git, GitError
from .repo import RepoInfo, worktree_branches

HEADS = "refs/heads/"
REMOTES = "refs/remotes/"
_PRUNE_LINE = re.compile(r"^\s*\*\s*\[would prune\]\s+(\S.*?)\s*$")


@dataclass
class BranchReport:
    default_branch: str | None = None
    default_source: str | None = None  # settings, origin/HEAD, init.defaultBranch, convention
    local: int = 0
    merged: list[dict[str, str]] = field(default_factory=list)  # deletable: {name, sha}
    kept: list[dict[str, str]] = field(default_factory=list)  # merged but kept: {name, sha, why}


@dataclass
class RemoteRefReport:
    remote_tracking: int = 0
    stale: dict[str, dict[str, str]] = field(default_factory=dict)  # remote -> {ref: sha}
    reasons: dict[str, str] = field(default_factory=dict)  # remote -> why its refs are stale
    queried: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "remote_tracking": self.remote_tracking,
            "stale": [
                {"remote": remote, "ref": ref, "sha": sha, "reason": self.reasons.get(remote, "")}
                for remote, refs in sorted(self.stale.items())
                for ref, sha in sorted(refs.items())
            ],
            "queried": self.queried,
            "errors": self.errors,
        }


def default_branch(info: RepoInfo, configured: str | None) -> tuple[str | None, str | None]:
    """(branch name, how it was found); the branch must exist locally."""
    heads = {name[len(HEADS) :] for name in info.refs if name.startswith(HEADS)}
    if configured:
        return (configured, "settings") if configured in heads else (None, None)
    for ref in info.refs.values():
        # refs/remotes/origin/HEAD -> refs/remotes/origin/main: the remote's default branch.
        if ref.name == f"{REMOTES}origin/HEAD" and ref.symref and ref.symref.startswith(f"{REMOTES}origin/"):
            name = ref.symref[len(f"{REMOTES}origin/") :]
            if name in heads:
                return name, "origin/HEAD"
    init_default = info.config_value("init.defaultbranch")
    if init_default and init_default in heads:
        return init_default, "init.defaultBranch"
    for name in ("main", "master", "trunk", "develop"):
        if name in heads:
            return name, "convention"
    return None, None


def is_protected(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def merged_branches(
    info: RepoInfo, git: Git, configured_default: str | None, protected: list[str]
) -> BranchReport:
    report = BranchReport()
    report.local = sum(1 for name in info.refs if name.startswith(HEADS))
    name, source = default_branch(info, configured_default)
    report.default_branch, report.default_source = name, source
    if name is None:
        return report
    default_ref = info.refs[HEADS + name]
    out = git.text(
        "for-each-ref", f"--merged={default_ref.oid}", "--format=%(refname)%00%(objectname)", HEADS
    )
    checked_out = worktree_branches(info, git)
    for line in out.splitlines():
        ref, _, sha = line.partition("\0")
        branch = ref[len(HEADS) :]
        why = None
        if branch == name:
            continue
        if ref in checked_out:
            why = "checked out" + (" (current branch)" if ref == info.head_ref else " in a worktree")
        elif is_protected(branch, protected):
            why = "protected"
        elif sha == default_ref.oid:
            why = f"no commits of its own (points at {name})"
        if why:
            report.kept.append({"name": branch, "sha": sha, "why": why})
        else:
            report.merged.append({"name": branch, "sha": sha})
    return report


def _remote_of(ref: str, remotes: list[str]) -> str | None:
    rest = ref[len(REMOTES) :]
    for remote in sorted(remotes, key=len, reverse=True):  # remote names may contain '/'
        if rest.startswith(remote + "/"):
            return remote
    return None


def remote_refs(info: RepoInfo, git: Git, *, query: bool, timeout: float) -> RemoteRefReport:
    """Stale remote-tracking refs: those of a remote no longer configured (offline), and, when
    ``query`` is set, those whose branch was deleted on the remote (`git remote prune --dry-run`)."""
    report = RemoteRefReport()
    remotes = info.remotes
    tracking = {name: ref for name, ref in info.refs.items() if name.startswith(REMOTES)}
    report.remote_tracking = len(tracking)
    for name, ref in tracking.items():
        if ref.symref:
            continue
        remote = _remote_of(name, remotes)
        if remote is None:
            orphan = name[len(REMOTES) :].split("/", 1)[0]
            report.stale.setdefault(orphan, {})[name] = ref.oid
            report.reasons[orphan] = f"remote {orphan!r} is no longer configured"
    if not query:
        return report
    # A remote query must never wait for a password or a host-key answer.
    batch_env = {}
    if "GIT_SSH_COMMAND" not in os.environ and not info.config_value("core.sshcommand"):
        batch_env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    for remote in remotes:
        if not any(_remote_of(name, remotes) == remote for name in tracking):
            continue
        report.queried.append(remote)
        try:
            out = git.text(
                "remote", "prune", "--dry-run", remote, online=True, timeout=timeout, extra_env=batch_env
            )
        except GitError as exc:
            report.errors[remote] = exc.stderr or str(exc)
            continue
        for line in out.splitlines():
            match = _PRUNE_LINE.match(line)
            if not match:
                continue
            short = match.group(1)
            ref = short if short.startswith("refs/") else REMOTES + short
            if ref in tracking and not tracking[ref].symref:
                report.stale.setdefault(remote, {})[ref] = tracking[ref].oid
                report.reasons[remote] = f"branches deleted on remote {remote!r}"
    return report
