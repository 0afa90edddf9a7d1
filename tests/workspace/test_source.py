"""``settings.source``: the repository a run clones when it has no working copy.

Clones are real: from a bare repository over file://, and over git's smart HTTP protocol from a
local server running ``git http-backend`` that demands the token. The token comes from Secret
Manager's REST ``versions:access`` (a recorded answer served by the local wire server) and must
reach git only through its environment.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from orchestra.automations.workspace import source as source_module
from orchestra.automations.workspace.plugin import WorkspaceAutomation
from orchestra.automations.workspace.settings import RepositorySource, WorkspaceSettings
from orchestra.automations.workspace.source import clone_env, cloned, read_secret
from orchestra.cli.main import cli
from orchestra.clock import FakeClock
from orchestra.config import ConfigError, parse_config
from orchestra.errors import InputError, TransientError
from orchestra.inputs import Origin
from orchestra.models import Mode, RunStatus, TriggerKind
from orchestra.registry import registry
from orchestra.runner import Runner, RunRequest
from orchestra.store.sqlite import SqliteStateStore
from pydantic import ValidationError

from tests.wire.server import Reply, WireServer, google_error

from .helpers import commit, init

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
SECRET = "projects/demo-project/secrets/repo-token/versions/latest"
FIXTURE = Path(__file__).parent / "fixtures" / "secretmanager_access.json"
BASE = "environments: {development: {}}\ndefault_environment: development\n"


# ----- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://user:hunter2secret@github.com/org/repo.git", "credentials do not belong in the URL"),
        ("http://github.com/org/repo.git", "http:// sends the token in clear"),
        ("ssh://git@github.com/org/repo.git", "accepted schemes"),
        ("git@github.com:org/repo.git", "accepted schemes"),
        ("file://host/srv/repo.git", "absolute local path"),
        ("https://github.com/org/repo.git?token=hunter2secret", "query or fragment"),
        ("https:///org/repo.git", "names no host"),
        ("https://github.com/org/repo .git", "spaces or control characters"),
    ],
)
def test_a_source_url_is_refused_with_why_and_without_repeating_it(url: str, why: str) -> None:
    text = BASE + f"automations:\n  workspace:\n    settings:\n      source: {{url: '{url}'}}\n"
    with pytest.raises(ConfigError) as caught:
        registry.check_config(parse_config(text, "c.yaml"), "c.yaml")
    message = str(caught.value)
    assert "automations.workspace.settings.source.url" in message and why in message
    assert "hunter2secret" not in message and url not in message


def test_source_settings_accepted_and_refused() -> None:
    ok = RepositorySource(url="https://github.com/org/repo.git", token_secret=SECRET, branch="release/1.2")
    assert ok.scheme == "https" and ok.clone_timeout_seconds == 300
    assert RepositorySource(url="http://127.0.0.1:8080/repo.git").scheme == "http"
    assert WorkspaceSettings().source is None
    for bad in (
        {"url": "file:///srv/repo.git", "token_secret": SECRET},  # no token for a local path
        {"url": "https://github.com/o/r.git", "token_secret": "repo-token"},  # not a version name
        {"url": "https://github.com/o/r.git", "branch": "-x"},
        {"url": "https://github.com/o/r.git", "branch": "a..b"},
        {"url": "https://github.com/o/r.git", "clone_timeout_seconds": 0},
        {"url": "https://github.com/o/r.git", "depth": 1},
    ):
        with pytest.raises(ValidationError):
            RepositorySource.model_validate(bad)


# ----- Secret Manager -------------------------------------------------------------------------


def session() -> AuthorizedSession:
    return AuthorizedSession(AnonymousCredentials())


def recorded_access() -> dict[str, Any]:
    answer = json.loads(FIXTURE.read_text())
    answer["payload"]["data"] = base64.b64encode(f"{TOKEN}\n".encode()).decode()
    return answer


def test_the_token_is_read_through_the_rest_api(wire: WireServer) -> None:
    wire.answer("GET", f"/v1/{SECRET}:access", Reply(200, recorded_access()))
    assert read_secret(SECRET, session=session(), endpoint=wire.base_url) == TOKEN
    (request,) = wire.received("GET")
    assert request.path == f"/v1/{SECRET}:access"


@pytest.mark.parametrize(
    ("reply", "error", "says"),
    [
        (google_error(403, "PERMISSION_DENIED", "denied"), InputError, "roles/secretmanager.secretAccessor"),
        (google_error(404, "NOT_FOUND", "no such version"), InputError, "HTTP 404"),
        (google_error(503, "UNAVAILABLE", "try later"), TransientError, "HTTP 503"),
        (google_error(429, "RESOURCE_EXHAUSTED", "quota"), TransientError, "HTTP 429"),
        (Reply(200, {"name": SECRET, "payload": {}}), InputError, "no base64 payload.data"),
    ],
)
def test_secret_manager_errors_name_the_secret(
    wire: WireServer, reply: Reply, error: type, says: str
) -> None:
    wire.answer("GET", f"/v1/{SECRET}:access", reply)
    with pytest.raises(error) as caught:
        read_secret(SECRET, session=session(), endpoint=wire.base_url)
    assert says in str(caught.value) and SECRET in str(caught.value)


def test_a_payload_that_is_not_one_token_is_refused_without_echoing_it(wire: WireServer) -> None:
    answer = recorded_access()
    answer["payload"]["data"] = base64.b64encode(b"line one\r\nX-Injected: yes").decode()
    wire.answer("GET", f"/v1/{SECRET}:access", Reply(200, answer))
    with pytest.raises(InputError) as caught:
        read_secret(SECRET, session=session(), endpoint=wire.base_url)
    assert "not a token" in str(caught.value) and "Injected" not in str(caught.value)


# ----- cloning --------------------------------------------------------------------------------


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    work = tmp_path / "origin-work"
    init(work)
    commit(work, "first", {"README.md": b"hello\n", "src/app.py": b"print('hi')\n"})
    subprocess.run(["git", "-C", str(work), "branch", "feature"], check=True)
    commit(work, "second", {"README.md": b"hello again\n"})
    bare = tmp_path / "served" / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "false"], check=True)
    return bare


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where clones go, watched: it must be empty once a clone is over."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_a_file_source_is_cloned_partially_and_removed_afterwards(bare_repo: Path, temp_root: Path) -> None:
    source = RepositorySource(url=f"file://{bare_repo}")
    with cloned(source) as clone:
        path = Path(clone.path)
        assert path.parent.parent == temp_root
        assert (path / "README.md").read_bytes() == b"hello again\n"
        config = subprocess.run(
            ["git", "-C", clone.path, "config", "--list", "--local"], capture_output=True, text=True
        )
        assert "remote.origin.promisor=true" in config.stdout
        assert "remote.origin.partialclonefilter=blob:none" in config.stdout
        branches = subprocess.run(
            ["git", "-C", clone.path, "branch", "-r"], capture_output=True, text=True
        ).stdout
        assert "origin/feature" in branches  # every branch's history is there
        head = subprocess.run(
            ["git", "-C", str(bare_repo), "rev-parse", "main"], capture_output=True, text=True
        )
        assert clone.commit == head.stdout.strip()
    assert list(temp_root.iterdir()) == []


def test_a_missing_branch_fails_with_context_and_leaves_nothing(bare_repo: Path, temp_root: Path) -> None:
    with pytest.raises(InputError) as caught:
        with cloned(RepositorySource(url=f"file://{bare_repo}", branch="nope")):
            pass
    assert "automations.workspace.settings.source: git clone failed" in str(caught.value)
    assert "nope" in str(caught.value)
    assert list(temp_root.iterdir()) == []


class GitHttpServer:
    """git's smart HTTP protocol (``git http-backend``) behind basic authentication."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
        self.authorizations: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                auth = self.headers.get("Authorization")
                server.authorizations.append(auth)
                if auth != server.expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {
                    "PATH": os.environ["PATH"],
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_USER": "x-access-token",
                }
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                done = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> GitHttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def test_over_http_the_token_goes_in_a_header_and_nowhere_else(
    bare_repo: Path, temp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[tuple[list[str], dict[str, str]]] = []
    real_run = source_module._run

    def watched(argv: list[str], env: dict[str, str], *args: Any) -> Any:
        spawned.append((list(argv), dict(env)))
        return real_run(argv, env, *args)

    monkeypatch.setattr(source_module, "_run", watched)
    with GitHttpServer(bare_repo.parent, TOKEN) as server:
        source = RepositorySource(url=f"{server.url}/repo.git", token_secret=SECRET)
        with cloned(source, read_token=lambda name: TOKEN if name == SECRET else "wrong") as clone:
            assert (Path(clone.path) / "README.md").read_bytes() == b"hello again\n"
            stored = [p.read_bytes() for p in Path(clone.path).parent.rglob("*") if p.is_file()]
            basic = server.expected.split()[1].encode()
            assert not any(TOKEN.encode() in data or basic in data for data in stored)
        assert server.expected in server.authorizations
    assert list(temp_root.iterdir()) == []
    assert spawned and all(TOKEN not in " ".join(argv) for argv, _ in spawned)
    clone_env_seen = spawned[0][1]
    assert clone_env_seen["GIT_CONFIG_KEY_2"] == f"http.{server.url}/.extraHeader"
    assert clone_env_seen["GIT_ALLOW_PROTOCOL"] == "http"


def test_a_refused_token_is_a_permanent_error_that_never_shows_it(bare_repo: Path, temp_root: Path) -> None:
    with GitHttpServer(bare_repo.parent, TOKEN) as server:
        source = RepositorySource(url=f"{server.url}/repo.git", token_secret=SECRET)
        with pytest.raises(InputError) as caught:
            with cloned(source, read_token=lambda name: "ghs_not-the-right-one"):
                pass
        assert server.authorizations and TOKEN not in str(server.authorizations)
    message = str(caught.value)
    assert "git clone failed" in message and "ghs_not-the-right-one" not in message
    assert list(temp_root.iterdir()) == []


def test_the_clone_ignores_this_machines_git_configuration(tmp_path: Path) -> None:
    env = clone_env(RepositorySource(url="https://github.com/org/repo.git"), None, str(tmp_path))
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ALLOW_PROTOCOL"] == "https"
    assert env["GIT_CONFIG_COUNT"] == "2"  # hooks off, no credential helper; no token, no header
    assert "GIT_ASKPASS" not in env


# ----- the automation -------------------------------------------------------------------------


def source_config(url: str) -> Any:
    text = (
        BASE
        + f"automations:\n  workspace:\n    schedule: '0 3 * * 0'\n    settings:\n      source: {{url: '{url}'}}\n"
    )
    return registry.check_config(parse_config(text, "c.yaml"), "c.yaml")


def test_a_scheduled_run_analyses_the_clone_and_proposes_nothing(
    bare_repo: Path, temp_root: Path, tmp_path: Path
) -> None:
    config = source_config(f"file://{bare_repo}")
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        runner = Runner(
            config, store, clock=FakeClock(dt.datetime(2026, 1, 4, 3, tzinfo=dt.UTC)), registry=registry
        )
        outcome = runner.submit(
            RunRequest(
                task="workspace",
                mode=Mode.apply,
                trigger_kind=TriggerKind.scheduled,
                trigger_id="schedule:workspace:development:2026-01-04T03:00:00Z",
                origin=Origin.remote,
            )
        )
    finally:
        store.close()
    run = outcome.run
    assert run.status == RunStatus.succeeded, run.error
    assert run.actions == []
    assert run.summary["repo"] == f"file://{bare_repo}"
    assert run.summary["source"]["branch"] is None and len(run.summary["source"]["commit"]) == 40
    assert run.summary["partial"] is True
    assert list(temp_root.iterdir()) == []


def test_with_a_source_the_workspace_can_be_scheduled_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with_source = source_config("https://github.com/org/repo.git")
    assert WorkspaceAutomation.schedule_blocker(with_source, "cloud") is None
    assert WorkspaceAutomation.schedule_blocker(with_source, "local") is None
    without = registry.check_config(parse_config(BASE + "automations: {workspace: {}}", "c.yaml"), "c.yaml")
    assert "settings.source" in (WorkspaceAutomation.schedule_blocker(without, "cloud") or "")
    assert "not in a git repository" in (WorkspaceAutomation.schedule_blocker(without, "local") or "")
    init(tmp_path / "here")
    monkeypatch.chdir(tmp_path / "here")
    assert WorkspaceAutomation.schedule_blocker(without, "local") is None
    assert WorkspaceAutomation.schedule_blocker(without, "cloud") is not None


def test_config_validate_says_why_the_cloud_gets_no_workspace_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "automations:\n  workspace: {schedule: '0 3 * * 0'}\n")
    result = CliRunner().invoke(cli, ["config", "validate", "--config", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert (
        "note: workspace: no schedule in the cloud: set automations.workspace.settings.source (a "
        "repository to clone); weekly maintenance runs in GitHub Actions (.github/workflows/workspace.yml)"
    ) in result.output
    assert (
        "note: workspace: no schedule in continuous mode here: the working directory is not" in result.output
    )
    path.write_text(
        BASE + "automations:\n  workspace:\n    schedule: '0 3 * * 0'\n"
        "    settings: {source: {url: 'https://github.com/org/repo.git'}}\n"
    )
    result = CliRunner().invoke(cli, ["config", "validate", "--config", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "note:" not in result.output


def test_the_controller_outside_a_repository_schedules_no_workspace_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "automations:\n  workspace: {schedule: '* * * * *'}\n")
    result = CliRunner().invoke(
        cli,
        ["controller", "--mode", "once", "--config", str(path), "--store", f"sqlite:///{tmp_path / 's.db'}"],
        env={"COLUMNS": "400"},
    )
    assert result.exit_code == 0, result.output
    assert (
        "note: workspace: no schedule in continuous mode here: the working directory is not" in result.output
    )
    assert "Nothing due." in result.output  # every minute, yet never run: it would fail
