"""The repository a run clones when it has no working copy (``settings.source``).

In the cloud a function has no repository of its own, so the scheduled run clones the configured
source into a temporary directory, analyses it and removes it. The clone is partial
(``--filter=blob:none``): commits and trees of every branch and tag arrive, blobs only for the
checked-out branch's files; the analysis never downloads the others (it runs offline, see
:mod:`.gitio`), it reports them as missing.

The access token is read from Secret Manager (REST ``versions:access`` through google-auth's
AuthorizedSession) and reaches git only through its environment, as an ``http.<origin>.extraHeader``
configuration entry (``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n``): it is
never on a command line, in the clone's configuration, on disk, in logs or in an error.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ...errors import InputError, TransientError
from .gitio import _run, git_env
from .settings import RepositorySource

SECRET_MANAGER_URL = "https://secretmanager.googleapis.com"
SOURCE_WHERE = "automations.workspace.settings.source"
TOKEN_WHERE = f"{SOURCE_WHERE}.token_secret"
# GitHub (and most git hosts) take a token as the password of HTTP basic authentication; the user
# name is not checked.
TOKEN_USER = "x-access-token"
_STDERR_LINES = 4
_STDERR_CHARS = 400
# git's messages for a failure that may pass on a later attempt.
_TRANSIENT_MARKERS = (
    "could not resolve host",
    "connection timed out",
    "connection refused",
    "connection reset",
    "operation timed out",
    "early eof",
    "the remote end hung up unexpectedly",
    "rpc failed",
    "returned error: 429",
    "returned error: 500",
    "returned error: 502",
    "returned error: 503",
    "returned error: 504",
    "temporary failure",
    "ssl_read",
    "gnutls_handshake",
)

TokenReader = Callable[[str], str]


def read_secret(name: str, *, session: Any = None, endpoint: str = SECRET_MANAGER_URL) -> str:
    """The payload of the Secret Manager version ``name`` (projects/P/secrets/S/versions/V) as a
    token: one line of printable ASCII. ``session`` is an AuthorizedSession (from Application
    Default Credentials when None; injected in tests), ``endpoint`` the API root (a local server
    in tests). Errors name the secret and the HTTP status, never the payload."""
    if session is None:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        session = AuthorizedSession(credentials)
    try:
        response = session.get(f"{endpoint}/v1/{name}:access", timeout=30)
    except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
        raise TransientError(f"Secret Manager unreachable reading {name}: {type(exc).__name__}") from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientError(f"Secret Manager answered HTTP {status} reading {name}")
    if status in (401, 403):
        raise InputError(
            f"Secret Manager refused access to {name} (HTTP {status}): the runtime service account "
            "needs roles/secretmanager.secretAccessor on that secret",
            where=TOKEN_WHERE,
        )
    if status == 404:
        raise InputError(
            f"Secret Manager has no {name} (HTTP 404); is the secret or version there?", where=TOKEN_WHERE
        )
    if status != 200:
        raise InputError(f"Secret Manager answered HTTP {status} reading {name}", where=TOKEN_WHERE)
    try:
        data = response.json()["payload"]["data"]
        payload = base64.b64decode(data, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InputError(
            f"Secret Manager's answer for {name} has no base64 payload.data", where=TOKEN_WHERE
        ) from None
    return _token(payload, name)


def _token(payload: bytes, name: str) -> str:
    token = payload.strip()
    if not token or any(b < 0x21 or b > 0x7E for b in token):
        raise InputError(
            f"the payload of {name} is not a token: expected one line of printable ASCII without spaces",
            where=TOKEN_WHERE,
        )
    return token.decode("ascii")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def clone_env(source: RepositorySource, token: str | None, home: str) -> dict[str, str]:
    """git's environment for the clone: no system or user configuration (no credential helper,
    URL rewrite or hook of this machine's), only the source's protocol, no prompt, and the token
    as an Authorization header for the source's origin only."""
    env = git_env(inherit_repo=False, offline=False)
    for name in ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND"):
        env.pop(name, None)
    for name in [k for k in env if k.startswith("GIT_CONFIG")]:
        env.pop(name)
    env.update(
        HOME=home,
        XDG_CONFIG_HOME=home,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ALLOW_PROTOCOL=source.scheme,
        GIT_TERMINAL_PROMPT="0",
    )
    entries: list[tuple[str, str]] = [("core.hooksPath", os.devnull), ("credential.helper", "")]
    if token is not None:
        basic = base64.b64encode(f"{TOKEN_USER}:{token}".encode()).decode("ascii")
        entries.append((f"http.{_origin(source.url)}.extraHeader", f"Authorization: Basic {basic}"))
    env["GIT_CONFIG_COUNT"] = str(len(entries))
    for index, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _stderr_excerpt(stderr: bytes, secrets: list[str]) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    text = " | ".join(lines[-_STDERR_LINES:])[-_STDERR_CHARS:]
    return _scrub(text, secrets) or "no message"


@dataclass(frozen=True)
class ClonedSource:
    path: str
    url: str
    branch: str | None
    commit: str | None

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "branch": self.branch,
            "commit": self.commit,
            "clone": "partial (--filter=blob:none): blobs of the checked-out branch only",
        }


def _git(args: list[str], env: dict[str, str], timeout: float, secrets: list[str], what: str) -> bytes:
    try:
        code, stdout, stderr = _run(["git", *args], env, None, timeout)
    except TimeoutError:
        raise TransientError(f"{SOURCE_WHERE}: {what} did not finish within {timeout:g} s") from None
    except FileNotFoundError:
        raise InputError(
            "git is not installed here (it is needed to clone the source)", where=SOURCE_WHERE
        ) from None
    if code != 0:
        message = _stderr_excerpt(stderr, secrets)
        lowered = message.lower()
        if any(marker in lowered for marker in _TRANSIENT_MARKERS):
            raise TransientError(f"{SOURCE_WHERE}: {what} failed (git exit {code}): {message}")
        raise InputError(f"{what} failed (git exit {code}): {message}", where=SOURCE_WHERE)
    return stdout


@contextmanager
def cloned(
    source: RepositorySource,
    *,
    read_token: TokenReader = read_secret,
    progress: Callable[[str], None] = lambda message: None,
) -> Iterator[ClonedSource]:
    """Clone ``source`` into a new temporary directory; yield where; remove it afterwards,
    whatever happens."""
    work = tempfile.mkdtemp(prefix="orchestra-workspace-")
    try:
        token = read_token(source.token_secret) if source.token_secret else None
        secrets = [token] if token else []
        if token:
            secrets.append(base64.b64encode(f"{TOKEN_USER}:{token}".encode()).decode("ascii"))
        home = os.path.join(work, "home")
        os.mkdir(home, 0o700)
        dest = os.path.join(work, "repo")
        env = clone_env(source, token, home)
        args = ["clone", "--quiet", "--filter=blob:none", "--no-recurse-submodules"]
        if source.branch:
            args += ["--branch", source.branch]
        progress(f"workspace: cloning {source.url}" + (f" ({source.branch})" if source.branch else ""))
        _git([*args, "--", source.url, dest], env, source.clone_timeout_seconds, secrets, "git clone")
        # An empty repository clones fine and has no HEAD commit yet.
        code, head, _ = _run(["git", "-C", dest, "rev-parse", "--verify", "--quiet", "HEAD"], env, None, 60)
        commit = head.decode("ascii", errors="replace").strip() or None if code == 0 else None
        yield ClonedSource(path=dest, url=source.url, branch=source.branch, commit=commit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
