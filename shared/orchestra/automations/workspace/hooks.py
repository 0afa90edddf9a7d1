"""Install and remove the git hooks (pre-commit: check staged files; post-merge: optimize).

The hooks call the Python interpreter that runs the installer (absolute path), so they work
without activating a virtualenv. An existing hook that is not ours is kept: it is renamed to
``<hook>.local`` and run first (a failing pre-commit ``.local`` still blocks the commit).
Re-installing only refreshes our script; uninstalling puts the original back.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError
from .gitio import Git, GitError
from .settings_defaults import PRECOMMIT_CONFLICT_MARKERS_DEFAULT, PRECOMMIT_MAX_KB_DEFAULT

MARKER = "# orchestra-workspace-hook"
HOOKS = ("pre-commit", "post-merge")

_TEMPLATE = """#!/bin/sh
{marker} v3: installed by `orchestra hooks install`; reinstalling overwrites this file.
# {purpose}
case $0 in */*) hook_dir=${{0%/*}} ;; *) hook_dir=. ;; esac  # dirname, without starting it
if [ -x "$hook_dir/{name}.local" ]; then
    "$hook_dir/{name}.local" "$@" || {on_local_failure}
fi
# Runs recorded by the hook live in the repository's git directory, not in the work tree.
if [ -z "${{ORCHESTRA_STORE:-}}" ]; then
    ORCHESTRA_STORE={store}
    export ORCHESTRA_STORE
fi
# Hooks run in the work tree, which `python -m` would put first on the import path: a package of
# the same name there (or on a branch just merged) would be imported instead of ours.
PYTHONSAFEPATH=1
export PYTHONSAFEPATH
{fast_path}{exec_line}
"""

# The pre-commit hook's common case decided by git alone, without starting Python: nothing staged
# (added or modified) is above the limit and no staged line could be a conflict marker. One
# `git diff --cached --raw` names the staged blobs; one `git cat-file --batch` streams them to awk,
# which stops at the first header above the limit or the first line starting like a marker, and
# passes only when it saw the end mark (so cat-file read every blob). Anything else (a configuration
# file named, a git error, a submodule, a binary file, a Markdown underline) goes on to the full
# check, which decides and explains; this path never blocks a commit itself.
_FAST_PATH = """# Fast path (git, cut and awk only): passes clean commits; anything else goes to the full check.
if [ -z "${{CONFIG_PATH:-}}" ] && staged=$(git diff --cached --raw --no-renames --diff-filter=AM \\
        --no-abbrev --no-ext-diff --no-color --ignore-submodules=all); then
    if [ -z "$staged" ]; then
        exit 0
    fi
    if {{ printf '%s\\n' "$staged" | cut -d ' ' -f 4; echo '{end}'; }} | git cat-file --batch |
        LC_ALL=C awk -v limit={limit} -v markers={markers} -v end='{end} missing' '
            $0 == end {{ done = 1; next }}
            {{ done = 0; oid = length($1) >= 40 && $1 ~ /^[0-9a-f]+$/ }}
            NF == 3 && $2 == "blob" && oid {{ if ($3 + 0 > limit) exit 1; next }}
            NF == 2 && $2 == "missing" && oid {{ exit 1 }}
            markers && /^(<<<<<<< |>>>>>>> |=======)/ {{ exit 1 }}
            END {{ if (!done) exit 1 }}'
    then
        exit 0
    fi
fi
"""
FAST_PATH_END = "..orchestra-end.."  # never an object name: refs cannot contain ".."

_PURPOSE = {
    "pre-commit": "Blocks the commit when a staged file is too large or has merge-conflict markers.",
    "post-merge": "Runs the safe workspace optimizations after a merge (never fails the merge).",
}


@dataclass
class HookResult:
    name: str
    path: str
    status: str  # installed, updated, chained (existing hook kept as .local), removed, restored, absent


def hooks_dir(git: Git) -> Path:
    """Where git looks for hooks (honours core.hooksPath)."""
    try:
        out = git.text("rev-parse", "--path-format=absolute", "--git-path", "hooks").strip()
    except GitError as exc:
        if "not a git repository" in exc.stderr:
            raise InputError(f"{git.repo}: not a git repository", where="--repo") from None
        raise
    return Path(out)


def _script(name: str, python: str, store: str) -> str:
    quoted = shlex.quote(python)
    fast_path = ""
    if name == "pre-commit":
        exec_line = f'exec {quoted} -m orchestra.automations.workspace.hook pre-commit "$@"'
        on_local_failure = "exit $?"
        fast_path = _FAST_PATH.format(
            end=FAST_PATH_END,
            limit=PRECOMMIT_MAX_KB_DEFAULT * 1024,
            markers=int(PRECOMMIT_CONFLICT_MARKERS_DEFAULT),
        )
    else:
        exec_line = f'{quoted} -m orchestra.automations.workspace.hook {name} "$@" || true'
        on_local_failure = "true"
    return _TEMPLATE.format(
        marker=MARKER,
        purpose=_PURPOSE[name],
        name=name,
        on_local_failure=on_local_failure,
        store=shlex.quote(f"sqlite:///{store}"),
        fast_path=fast_path,
        exec_line=exec_line,
    )


def _is_ours(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return MARKER.encode() in handle.read(512)
    except OSError:
        return False


def install(repo: str, names: tuple[str, ...] = HOOKS, python: str | None = None) -> list[HookResult]:
    if not os.path.isdir(repo):
        raise InputError(f"{repo}: no such directory", where="--repo")
    git = Git(repo)
    directory = hooks_dir(git)
    common = git.text("rev-parse", "--path-format=absolute", "--git-common-dir").strip()
    store = str(Path(common) / "orchestra" / "state.db")
    interpreter = os.path.abspath(python or sys.executable)  # not resolved: a venv's python is a link
    directory.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        if name not in HOOKS:
            raise InputError(f"unknown hook {name!r}; accepted: {', '.join(HOOKS)}", where="--hook")
        target = directory / name
        local = directory / f"{name}.local"
        status = "installed"
        if target.exists() or target.is_symlink():
            if _is_ours(target):
                status = "updated"
            elif local.exists():
                raise InputError(
                    f"{target} is not ours and {local.name} already exists; merge them by hand "
                    f"(keep one as {local.name}) and run `orchestra hooks install` again",
                    where="--repo",
                )
            else:
                target.rename(local)
                status = "chained"
        tmp = directory / f".{name}.orchestra-tmp"
        tmp.write_text(_script(name, interpreter, store))
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(tmp, target)
        if local.exists() and status == "updated":
            status = "updated (chained)"
        results.append(HookResult(name, str(target), status))
    return results


def uninstall(repo: str, names: tuple[str, ...] = HOOKS) -> list[HookResult]:
    git = Git(repo)
    directory = hooks_dir(git)
    results = []
    for name in names:
        target = directory / name
        local = directory / f"{name}.local"
        if not _is_ours(target):
            results.append(
                HookResult(name, str(target), "absent" if not target.exists() else "not ours, kept")
            )
            continue
        target.unlink()
        if local.exists():
            local.rename(target)
            results.append(HookResult(name, str(target), "restored"))
        else:
            results.append(HookResult(name, str(target), "removed"))
    return results
