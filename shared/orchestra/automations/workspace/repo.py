"""Where the repository is and what state it is in: git dirs, HEAD, config, refs, worktrees."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InputError
from .gitio import Git, GitError

ZERO_OID = "0" * 40


@dataclass
class Ref:
    name: str  # full name, refs/heads/main
    oid: str
    type: str  # commit, tag, tree, blob
    peeled: str | None = None  # for annotated tags: the object the tag points at
    symref: str | None = None
    upstream: str | None = None

    @property
    def target(self) -> str:
        return self.peeled or self.oid


@dataclass
class RepoInfo:
    path: str
    toplevel: str | None
    git_dir: str
    common_dir: str
    bare: bool
    shallow: bool
    head_ref: str | None  # refs/heads/x, or None when detached
    head_commit: str | None  # None: no commits yet (unborn branch)
    head_tree: str | None
    config: dict[str, list[str]] = field(default_factory=dict)
    refs: dict[str, Ref] = field(default_factory=dict)
    object_format: str = "sha1"

    @property
    def partial(self) -> bool:
        return bool(self.promisor_remotes)

    @property
    def promisor_remotes(self) -> list[str]:
        names = []
        for key, values in self.config.items():
            if key.startswith("remote.") and key.endswith(".promisor") and values[-1].lower() == "true":
                names.append(key[len("remote.") : -len(".promisor")])
        if not names and self.config.get("extensions.partialclone"):
            names.append(self.config["extensions.partialclone"][-1])
        return names

    @property
    def remotes(self) -> list[str]:
        return sorted(
            {
                k[len("remote.") : -len(".url")]
                for k in self.config
                if k.startswith("remote.") and k.endswith(".url")
            }
        )

    def config_value(self, key: str) -> str | None:
        values = self.config.get(key.lower())
        return values[-1] if values else None

    @property
    def objects_dir(self) -> Path:
        return Path(self.common_dir) / "objects"


def parse_git_int(value: str | None, default: int) -> int:
    """git's integer syntax: optional k/m/g suffix (1024-based)."""
    if value is None or not value.strip():
        return default
    text = value.strip().lower()
    scale = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(text[-1], 1)
    if scale != 1:
        text = text[:-1]
    try:
        return int(text) * scale
    except ValueError:
        return default


def _config_key(key: str) -> str:
    # Section and variable names are case-insensitive, subsection names are not.
    section, dot, rest = key.partition(".")
    if not dot:
        return key.lower()
    sub, dot2, var = rest.rpartition(".")
    if not dot2:
        return f"{section.lower()}.{rest.lower()}"
    return f"{section.lower()}.{sub}.{var.lower()}"


def read_config(git: Git) -> dict[str, list[str]]:
    raw = git.run("config", "-z", "--list", ok=(0, 1))
    out: dict[str, list[str]] = {}
    for item in raw.split(b"\0"):
        if not item:
            continue
        key, _, value = item.partition(b"\n")
        out.setdefault(_config_key(key.decode(errors="replace")), []).append(value.decode(errors="replace"))
    return out


REF_FORMAT = "%(refname)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(symref)%00%(upstream)"


def read_refs(git: Git) -> dict[str, Ref]:
    refs: dict[str, Ref] = {}
    for line in git.run("for-each-ref", f"--format={REF_FORMAT}").split(b"\n"):
        if not line:
            continue
        parts = line.decode("utf-8", errors="surrogateescape").split("\0")
        if len(parts) != 6:
            continue
        name, oid, typ, peeled, symref, upstream = parts
        refs[name] = Ref(name, oid, typ, peeled or None, symref or None, upstream or None)
    return refs


def discover(repo: str, git: Git | None = None) -> tuple[RepoInfo, Git]:
    """Locate the repository at ``repo`` and read its refs and HEAD; InputError (exit 2) when it
    is not one, GitError when git cannot read its refs or HEAD's commit."""
    info, git = locate(repo, git)
    info.refs = read_refs(git)
    info.head_ref, info.head_commit = _read_head(info, git)
    if info.head_commit:
        # Read from the commit itself: peeling with ^{tree} also reads the tree, which a partial
        # clone without a checkout (--filter=tree:0) does not have.
        first = git.run("cat-file", "commit", info.head_commit, ok=(0, 128)).partition(b"\n")[0]
        info.head_tree = first[len(b"tree ") :].decode() if first.startswith(b"tree ") else None
    return info, git


def locate(repo: str, git: Git | None = None) -> tuple[RepoInfo, Git]:
    """Where the repository at ``repo`` is, and its configuration: reads no ref and no object,
    so it answers for a repository whose objects are damaged. InputError when it is not one."""
    path = os.path.abspath(repo)
    if not os.path.isdir(path):
        raise InputError(f"{repo}: no such directory; expected a git repository path", where="--repo")
    git = git or Git(path)
    base = [
        "rev-parse",
        "--is-bare-repository",
        "--is-shallow-repository",
        "--show-object-format",
        "--path-format=absolute",
        "--absolute-git-dir",
        "--git-common-dir",
    ]
    try:
        try:
            out = git.text(*base, "--show-toplevel").splitlines()
        except GitError as exc:
            if "work tree" not in exc.stderr:
                raise
            out = git.text(*base).splitlines()  # a bare repository has no top level
    except GitError as exc:
        if "not a git repository" in exc.stderr:
            raise InputError(f"{repo}: not a git repository ({exc.stderr})", where="--repo") from None
        raise
    bare = out[0] == "true"
    info = RepoInfo(
        path=path,
        toplevel=out[5] if len(out) > 5 and not bare else None,
        git_dir=out[3],
        common_dir=out[4],
        bare=bare,
        shallow=out[1] == "true",
        head_ref=None,
        head_commit=None,
        head_tree=None,
        object_format=out[2],
    )
    info.config = read_config(git)
    return info, git


def _read_head(info: RepoInfo, git: Git) -> tuple[str | None, str | None]:
    """(symbolic ref, commit). Unborn branch: (ref, None). Detached: (None, commit)."""
    try:
        text = (Path(info.git_dir) / "HEAD").read_text().strip()
    except OSError:
        text = ""
    if text.startswith("ref: ") and not text.endswith("/.invalid"):
        ref = text[len("ref: ") :]
        found = info.refs.get(ref)
        return ref, found.oid if found else None
    if len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text):
        return None, text
    # Another ref backend: ask git.
    ref = git.text("symbolic-ref", "-q", "HEAD", ok=(0, 1)).strip() or None
    commit = git.text("rev-parse", "--verify", "-q", "HEAD^{commit}", ok=(0, 1)).strip() or None
    return ref, commit


def worktree_branches(info: RepoInfo, git: Git) -> set[str]:
    """Branches checked out in any worktree (deleting one would orphan that worktree's HEAD)."""
    branches = {info.head_ref} if info.head_ref else set()
    if not (Path(info.common_dir) / "worktrees").is_dir():
        return branches
    for line in git.text("worktree", "list", "--porcelain").splitlines():
        if line.startswith("branch "):
            branches.add(line[len("branch ") :])
    return branches
