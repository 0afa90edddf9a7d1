"""The optimizations: prepare / apply / verify / rollback, each from the stored action alone.

Everything an action needs (repository path, refs and their shas, directories) is in
``action.params``; what undo needs is captured by ``prepare`` into ``action.rollback`` before
anything changes, so another process can finish or undo a run after a crash.

Safety rules re-checked at apply time, not only at analysis time: a ref is deleted only if it
still points where it did (``git update-ref -d REF OLD`` is atomic), a branch only if it is still
merged and checked out nowhere, a directory only if git still ignores it and tracks nothing in it.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from ...automation import Verification
from ...errors import InputError, OrchestraError
from ...models import Action
from .cachedirs import dir_size
from .gitio import Git, GitError, decode_path
from .objects import count_objects
from .repo import discover, worktree_branches

HEADS = "refs/heads/"


class UnsafeAction(OrchestraError):
    """The repository changed since analysis in a way that makes the action unsafe now."""


def _git(action: Action) -> Git:
    repo = action.params.get("repo")
    if not isinstance(repo, str) or not os.path.isdir(repo):
        raise InputError(f"action {action.id}: repository {repo!r} does not exist", where="params.repo")
    return Git(repo)


def _ref_sha(git: Git, ref: str) -> str | None:
    return git.text("rev-parse", "--verify", "-q", f"{ref}^{{object}}", ok=(0, 1)).strip() or None


def _footprint(counts: dict[str, int]) -> int:
    return counts.get("size", 0) + counts.get("size-pack", 0) + counts.get("size-garbage", 0)


# --------------------------------------------------------------------------- prepare
def prepare(action: Action) -> dict[str, Any]:
    git = _git(action)
    if action.kind in ("gc", "gc-auto", "remove-cache-dir"):
        # Nothing to undo: gc keeps every reachable object, caches are rebuilt by their tools.
        return {}
    if action.kind == "prune-remote":
        refs = {}
        for ref, sha in action.params["refs"].items():
            if _ref_sha(git, ref) == sha:
                refs[ref] = sha
        return {"refs": refs}
    if action.kind == "delete-merged-branch":
        branch = action.params["branch"]
        ref = HEADS + branch
        # git lists keys as branch.<name as spelled>.<variable>: exact subsection match.
        prefix = f"branch.{branch}."
        raw = git.run("config", "-z", "--local", "--list", ok=(0, 1))
        config: dict[str, list[str]] = {}
        for item in raw.split(b"\0"):
            key, _, value = (part.decode(errors="surrogateescape") for part in item.partition(b"\n"))
            if key.startswith(prefix):
                config.setdefault(key, []).append(value)
        return {"ref": ref, "sha": _ref_sha(git, ref), "config": config}
    raise InputError(f"unknown action kind {action.kind!r}", where=action.id)


# --------------------------------------------------------------------------- apply
def apply(action: Action) -> dict[str, Any]:
    git = _git(action)
    if action.kind in ("gc", "gc-auto"):
        return _apply_gc(git, action)
    if action.kind == "prune-remote":
        return _apply_prune(git, action)
    if action.kind == "delete-merged-branch":
        return _apply_delete_branch(git, action)
    if action.kind == "remove-cache-dir":
        return _apply_remove_dirs(git, action)
    raise InputError(f"unknown action kind {action.kind!r}", where=action.id)


def _apply_gc(git: Git, action: Action) -> dict[str, Any]:
    before = count_objects(git)
    # Run in the foreground: a detached gc would make the before/after comparison meaningless.
    detach = ["gc.autoDetach=false", "maintenance.autoDetach=false"]
    if action.kind == "gc":
        command = ["gc", "--quiet"]
    elif action.params.get("command") == "gc":
        command = ["gc", "--auto", "--quiet"]
    else:
        command = ["maintenance", "run", "--auto", "--quiet"]
    git.run(*command, config=detach)
    after = count_objects(git)
    return {
        "command": "git " + " ".join(command),
        "before": before,
        "after": after,
        "freed_bytes": (_footprint(before) - _footprint(after)) * 1024,
    }


def _apply_prune(git: Git, action: Action) -> dict[str, Any]:
    prepared = (action.rollback or {}).get("refs")
    refs: dict[str, str] = prepared if prepared is not None else action.params["refs"]
    skipped = sorted(set(action.params["refs"]) - set(refs))
    if refs:
        # One transaction: either every ref still at its recorded sha is deleted, or none is.
        spec = "".join(f"delete {ref} {sha}\n" for ref, sha in sorted(refs.items()))
        git.run("update-ref", "--stdin", input=spec.encode())
    return {"deleted": sorted(refs), "skipped_moved": skipped}


def _apply_delete_branch(git: Git, action: Action) -> dict[str, Any]:
    branch = action.params["branch"]
    ref = HEADS + branch
    sha = action.params["sha"]
    default = action.params["default_branch"]
    current = _ref_sha(git, ref)
    if current is None:
        return {"deleted": None, "note": f"{ref} no longer exists"}
    if current != sha:
        raise UnsafeAction(f"{ref} moved since analysis ({sha[:12]} -> {current[:12]}); not deleted")
    info, _ = discover(git.repo, git)
    if ref in worktree_branches(info, git):
        raise UnsafeAction(f"{ref} is checked out now; not deleted")
    if not _is_ancestor(git, sha, HEADS + default):
        raise UnsafeAction(f"{ref} is no longer merged into {default}; not deleted")
    git.run("update-ref", "-m", f"orchestra workspace: delete branch merged into {default}", "-d", ref, sha)
    if (action.rollback or {}).get("config"):
        git.run("config", "--local", "--remove-section", f"branch.{branch}", ok=(0, 128))
    return {"deleted": ref, "sha": sha}


def _is_ancestor(git: Git, commit: str, ref: str) -> bool:
    try:
        git.run("merge-base", "--is-ancestor", commit, ref)
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True


def _apply_remove_dirs(git: Git, action: Action) -> dict[str, Any]:
    info, _ = discover(git.repo, git)
    if info.toplevel is None:
        raise UnsafeAction("a bare repository has no work tree to clean")
    root = os.path.realpath(info.toplevel)
    wanted: list[str] = list(action.params["dirs"])
    ignored = set()
    if wanted:
        out = git.run(
            "check-ignore",
            "-z",
            "--stdin",
            input=b"".join(d.encode("utf-8", "surrogateescape") + b"\0" for d in wanted),
            ok=(0, 1),
            # check-ignore takes path names, and refuses the literal-pathspec switch.
            extra_env={"GIT_LITERAL_PATHSPECS": "0"},
        )
        ignored = {decode_path(p) for p in out.split(b"\0") if p}
    tracked_out = git.run("ls-files", "-z", "--", *wanted) if wanted else b""
    tracked = [decode_path(p) for p in tracked_out.split(b"\0") if p]
    removed: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for relative in wanted:
        absolute = os.path.join(info.toplevel, relative)
        why = None
        if not os.path.isdir(absolute):
            why = "no longer exists"
        elif os.path.islink(absolute) or not os.path.realpath(absolute).startswith(root + os.sep):
            why = "is a link or outside the work tree"
        elif relative not in ignored and relative.rstrip("/") not in ignored:
            why = "is no longer ignored by git"
        elif any(t == relative or t.startswith(relative.rstrip("/") + "/") for t in tracked):
            why = "contains tracked files"
        if why:
            skipped.append({"path": relative, "why": why})
            continue
        size, files = dir_size(absolute)
        errors = _remove_tree(absolute)
        removed.append({"path": relative, "size_bytes": size, "files": files, "errors": errors[:5]})
    return {
        "removed": removed,
        "skipped": skipped,
        "freed_bytes": sum(r["size_bytes"] for r in removed),
    }


def _remove_tree(path: str) -> list[str]:
    errors: list[str] = []

    def record(_fn: object, failed: str, exc: tuple[type[BaseException], BaseException, object]) -> None:
        errors.append(f"{failed}: {exc[1]}")

    shutil.rmtree(path, onerror=record)  # onerror, not onexc: Python 3.11 is supported
    return errors


# --------------------------------------------------------------------------- verify
def verify(action: Action) -> Verification:
    git = _git(action)
    if action.kind in ("gc", "gc-auto"):
        before = action.result.get("before") or {}
        now = count_objects(git)
        # Healthy outcome: no more loose objects and no bigger footprint than before
        # (1 % slack for pack index files written alongside).
        ok = now.get("count", 0) <= before.get("count", now.get("count", 0)) and _footprint(now) <= (
            _footprint(before) * 1.01 + 64
        )
        return Verification(
            ok=ok,
            evidence={
                "before": before,
                "now": now,
                "reduced": now.get("count", 0) < before.get("count", 0)
                or _footprint(now) < _footprint(before),
            },
        )
    if action.kind == "prune-remote":
        deleted = action.result.get("deleted", [])
        still = [ref for ref in deleted if _ref_sha(git, ref) is not None]
        return Verification(ok=not still, evidence={"deleted": deleted, "still_present": still})
    if action.kind == "delete-merged-branch":
        ref = HEADS + action.params["branch"]
        present = _ref_sha(git, ref)
        if action.result.get("deleted") is None:
            return Verification(ok=True, evidence={"note": action.result.get("note", "nothing deleted")})
        return Verification(ok=present is None, evidence={"ref": ref, "present": present})
    if action.kind == "remove-cache-dir":
        repo = action.params["repo"]
        left = [
            r["path"]
            for r in action.result.get("removed", [])
            if os.path.exists(os.path.join(repo, r["path"]))
        ]
        return Verification(
            ok=not left, evidence={"freed_bytes": action.result.get("freed_bytes", 0), "still_present": left}
        )
    raise InputError(f"unknown action kind {action.kind!r}", where=action.id)


# --------------------------------------------------------------------------- rollback
def rollback(action: Action) -> dict[str, Any]:
    """Undo from ``action.rollback``; safe to call twice."""
    data = action.rollback or {}
    git = _git(action)
    if action.kind == "prune-remote":
        restored, kept = [], []
        for ref, sha in sorted((data.get("refs") or {}).items()):
            current = _ref_sha(git, ref)
            if current is None:
                git.run("update-ref", "-m", "orchestra workspace: rollback", ref, sha, "")
                restored.append(ref)
            elif current != sha:
                kept.append(ref)  # updated since (a fetch): the newer value wins
        return {"restored": restored, "left_as_is": kept}
    if action.kind == "delete-merged-branch":
        ref, sha = data.get("ref"), data.get("sha")
        if not ref or not sha:
            return {"restored": None}
        current = _ref_sha(git, ref)
        if current is None:
            git.run("update-ref", "-m", "orchestra workspace: rollback", ref, sha, "")
        elif current != sha:
            raise UnsafeAction(f"cannot restore {ref} to {sha[:12]}: it now points at {current[:12]}")
        for key, values in (data.get("config") or {}).items():
            existing = git.run("config", "--local", "--get-all", key, ok=(0, 1)).decode().splitlines()
            for value in values:
                if value not in existing:
                    git.run("config", "--local", "--add", key, value)
        return {"restored": ref, "sha": sha}
    return {"note": "nothing to undo"}
