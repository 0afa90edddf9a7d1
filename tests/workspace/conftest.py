"""Real git repositories for the workspace tests, built with a fixed identity and no global config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.wire.conftest import wire, wire_server  # noqa: F401 - the recording server, for the Secret Manager tests

from .helpers import MIB, commit, git, init, random_bytes


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No user/system git config, a fixed identity, file:// clones allowed, our own state store."""
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / "gitconfig"
    gitconfig.write_text(
        "[init]\n\tdefaultBranch = main\n"
        '[protocol "file"]\n\tallow = always\n'
        "[gc]\n\tautoDetach = false\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "CONFIG_PATH", "GIT_SSH_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.invalid")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-01-05T12:00:00Z")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-05T12:00:00Z")
    monkeypatch.setenv("ORCHESTRA_STORE", f"sqlite:///{home / 'state.db'}")
    yield


@pytest.fixture
def history_repo(tmp_path: Path) -> Path:
    """main with a 5 MiB blob added then deleted, a 1.5 MiB binary in HEAD, committed junk, a deep
    path; branches: merged/done (merged), wip (unmerged), fresh (= main), release/1.0 (protected)."""
    repo = init(tmp_path / "history")
    commit(
        repo,
        "initial",
        {
            "README.md": "# Project\n\nTitle\n=======\n",
            "src/app.py": "print('hello')\n",
            "src/util.py": "def f():\n    return 1\n",
            "node_modules/left-pad/index.js": "module.exports = 1\n",
            "a/b/c/d/e/f/g/h/i/j/k/l/deep.txt": "deep\n",
        },
    )
    commit(repo, "add dump", {"data/dump.bin": random_bytes(5 * MIB, 1)})
    commit(repo, "remove dump", remove=["data/dump.bin"])
    commit(repo, "add image", {"assets/logo.png": random_bytes(1_500_000, 2)})
    git(repo, "branch", "release/1.0")
    git(repo, "checkout", "-q", "-b", "merged/done")
    commit(repo, "feature done", {"src/feature.py": "x = 1\n"})
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge feature", "merged/done")
    git(repo, "branch", "fresh")
    git(repo, "checkout", "-q", "-b", "wip")
    commit(repo, "wip", {"src/wip.py": "y = 2\n"})
    git(repo, "checkout", "-q", "main")
    return repo


@pytest.fixture
def remote_pair(tmp_path: Path) -> tuple[Path, Path]:
    """An upstream repository (filters allowed) and a full clone of it."""
    upstream = init(tmp_path / "upstream")
    git(upstream, "config", "uploadpack.allowFilter", "true")
    git(upstream, "config", "uploadpack.allowAnySHA1InWant", "true")
    commit(upstream, "one", {"README.md": "hello\n", "src/a.py": "a = 1\n"})
    commit(upstream, "big", {"blob.bin": random_bytes(3 * MIB, 3)})
    commit(upstream, "drop big", remove=["blob.bin"])
    git(upstream, "branch", "topic")
    git(upstream, "branch", "gone-soon")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", f"file://{upstream}", str(clone))
    return upstream, clone
