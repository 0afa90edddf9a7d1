"""Running git: argument lists only, a controlled environment, errors with context.

Standard library only: the pre-commit check imports this and must start fast, so commands are
started with ``os.posix_spawnp`` and pipes rather than ``subprocess``, whose import (threading,
selectors, locale and re with it) costs the hook process more than its own git commands.
Where ``posix_spawnp`` is missing (Windows), ``subprocess`` is imported on first use.

Analysis commands run *offline*: ``GIT_ALLOW_PROTOCOL`` names no real transport, so a partial
clone can never lazily download a missing object behind our back (the command fails instead,
and callers only ask about objects known to be present). ``GIT_OPTIONAL_LOCKS=0`` keeps
read-only commands from refreshing the index under a developer's running ``git``.
"""

from __future__ import annotations

import _signal  # the constants of ``signal`` without its enum classes: 2 ms less at hook start
import os
import select
import time
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


class ObjectsUnreadable(OrchestraError):
    """git could not read objects the repository says it has (corrupt or missing)."""

    def __init__(self, what: str, oids: list[str]) -> None:
        self.oids = oids
        shown = ", ".join(oids[:3]) + (f" and {len(oids) - 3} more" if len(oids) > 3 else "")
        super().__init__(f"{what}: git could not read {len(oids)} object(s): {shown}")


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
    """git commands against one repository: ``git -C <the path the user gave>``."""

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
        argv = ["git", "-C", self.repo]  # -C rather than a working directory: posix_spawn has none
        for item in config:
            argv += ["-c", item]
        argv += args
        env = self.online_env if online else self.env
        if extra_env:
            env = {**env, **extra_env}
        try:
            returncode, stdout, stderr = _run(argv, env, input, timeout)
        except FileNotFoundError as exc:
            raise OrchestraError(f"git executable not found ({exc}); install git >= 2.32") from None
        except TimeoutError:
            raise GitError(argv[3:], -1, f"timed out after {timeout} s", self.repo) from None
        if returncode not in ok:
            if not os.path.isdir(self.repo):
                raise InputError(f"{self.repo}: no such directory", where="--repo")
            raise GitError(argv[3:], returncode, stderr, self.repo)
        return stdout

    def text(self, *args: str, **kwargs: object) -> str:
        return self.run(*args, **kwargs).decode("utf-8", errors="surrogateescape")  # type: ignore[arg-type]


# Python ignores these; a child would inherit that (git then sees EPIPE instead of dying quietly
# when its reader goes away), so they are reset to the default in the child, as subprocess does.
_CHILD_DEFAULT_SIGNALS = tuple(
    getattr(_signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(_signal, name)
)


def _run(
    argv: list[str], env: dict[str, str], input: bytes | None, timeout: float | None
) -> tuple[int, bytes, bytes]:
    """Run ``argv`` (found on PATH) with ``input`` as stdin (EOF when None); return (exit code,
    stdout, stderr). TimeoutError after ``timeout`` seconds, the command killed."""
    if not hasattr(os, "posix_spawnp"):
        import subprocess

        try:
            done = subprocess.run(
                argv, input=input or b"", capture_output=True, env=env, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise TimeoutError from None
        return done.returncode, done.stdout, done.stderr
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    parent_ends = {stdin_w, stdout_r, stderr_r}
    try:
        pid = os.posix_spawnp(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin_r, 0),
                (os.POSIX_SPAWN_DUP2, stdout_w, 1),
                (os.POSIX_SPAWN_DUP2, stderr_w, 2),
            ],
            setsigdef=_CHILD_DEFAULT_SIGNALS,
        )
    except BaseException:
        for fd in parent_ends:
            os.close(fd)
        raise
    finally:
        for fd in (stdin_r, stdout_w, stderr_w):
            os.close(fd)
    output: dict[int, list[bytes]] = {stdout_r: [], stderr_r: []}
    pending = memoryview(input or b"")
    poller = select.poll()
    poller.register(stdout_r, select.POLLIN)
    poller.register(stderr_r, select.POLLIN)
    if pending:
        poller.register(stdin_w, select.POLLOUT)
    else:
        os.close(stdin_w)
        parent_ends.discard(stdin_w)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while parent_ends:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0) * 1000
            events = poller.poll(wait)
            if not events and deadline is not None and time.monotonic() >= deadline:
                os.kill(pid, _signal.SIGKILL)
                raise TimeoutError
            for fd, _ in events:
                if fd == stdin_w:
                    try:  # at most PIPE_BUF: a write that fits never blocks
                        pending = pending[os.write(fd, pending[: select.PIPE_BUF]) :]
                    except BrokenPipeError:
                        pending = pending[:0]  # it stopped reading: its exit code says why
                    done = not pending
                else:
                    chunk = os.read(fd, 1 << 16)
                    output[fd].append(chunk)
                    done = not chunk
                if done:
                    poller.unregister(fd)
                    os.close(fd)
                    parent_ends.discard(fd)
    finally:
        for fd in parent_ends:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(output[stdout_r]), b"".join(output[stderr_r])


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
