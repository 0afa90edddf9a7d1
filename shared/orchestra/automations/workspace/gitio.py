"""Running git: argument lists only, a controlled environment, errors with context.

Standard library only: the pre-commit check imports this and must start fast.

Analysis commands run *offline*: ``GIT_ALLOW_PROTOCOL`` names no real transport, so a partial
clone can never lazily download a missing object behind our back (the command fails instead,
and callers only ask about objects known to be present). ``GIT_OPTIONAL_LOCKS=0`` keeps
read-only commands from refreshing the index under a developer's running ``git``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from ...errors import InputError, OrchestraError

# Variables that make git operate on some other repository than the one we were pointed at.
# Hooks inherit them from git (and must honour GIT_INDEX_FILE); `--repo PATH` callers must not.
REPO_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
OFFLINE_PROTOCOL = "orchestra-offline"  # not a transport: every fetch attempt fails fast


class GitError(OrchestraError):
    """A git command failed. Carries the command, exit code and the end of stderr."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: bytes | str, repo: str) -> None:
        text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        lines = [line for line in text.strip().splitlines() if line.strip()]
        self.args_list = list(args)
        self.returncode = returncode
        self.stderr = "\n".join(lines[-5:])
        detail = f": {self.stderr}" if self.stderr else ""
        super().__init__(f"`git {' '.join(args)}` in {repo} exited {returncode}{detail}")


def git_env(*, inherit_repo: bool, offline: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if not inherit_repo:
        for name in REPO_LOCATION_VARS:
            env.pop(name, None)
    env.update(
        LC_ALL="C",
        LANG="C",
        GIT_OPTIONAL_LOCKS="0",
        GIT_TERMINAL_PROMPT="0",
        GIT_LITERAL_PATHSPECS="1",
        GIT_PAGER="cat",
    )
    env.pop("GIT_TRACE", None)
    if offline:
        env["GIT_ALLOW_PROTOCOL"] = OFFLINE_PROTOCOL
        env["GIT_NO_LAZY_FETCH"] = "1"  # git >= 2.44; older ones are stopped by the line above
    if extra:
        env.update(extra)
    return env


class Git:
    """git commands against one repository (``cwd`` = the path the user gave)."""

    def __init__(self, repo: str | os.PathLike[str], *, inherit_repo: bool = False, offline: bool = True):
        self.repo = str(repo)
        self.env = git_env(inherit_repo=inherit_repo, offline=offline)
        self.online_env = git_env(inherit_repo=inherit_repo, offline=False)

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        ok: Sequence[int] = (0,),
        timeout: float | None = None,
        online: bool = False,
        config: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
    ) -> bytes:
        """Run ``git [-c config]... args``; return stdout. Exit codes outside ``ok`` raise GitError."""
        argv = ["git"]
        for item in config:
            argv += ["-c", item]
        argv += args
        env = self.online_env if online else self.env
        if extra_env:
            env = {**env, **extra_env}
        try:
            done = subprocess.run(
                argv,
                cwd=self.repo,
                input=input,
                capture_output=True,
                env=env,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            if not os.path.isdir(self.repo):
                raise InputError(f"{self.repo}: no such directory", where="--repo") from None
            raise OrchestraError(f"git executable not found ({exc}); install git >= 2.31") from None
        except subprocess.TimeoutExpired:
            raise GitError(argv[1:], -1, f"timed out after {timeout} s", self.repo) from None
        if done.returncode not in ok:
            raise GitError(argv[1:], done.returncode, done.stderr, self.repo)
        return done.stdout

    def text(self, *args: str, **kwargs: object) -> str:
        return self.run(*args, **kwargs).decode("utf-8", errors="surrogateescape")  # type: ignore[arg-type]

    def popen(
        self, *args: str, stdin: int | None = None, stdout: int | None = subprocess.PIPE, **kwargs: object
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
            ["git", *args],
            cwd=self.repo,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=self.env,
            **kwargs,
        )


def decode_path(raw: bytes) -> str:
    """Paths are bytes in git; keep undecodable bytes round-trippable."""
    return raw.decode("utf-8", errors="surrogateescape")


def display_path(path: str) -> str:
    """A path safe to print and to put into JSON (undecodable bytes shown as \\xNN)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
