"""`make package`: one reproducible archive per function, deployable on its own.

The serving test unzips each archive into an empty directory and runs it with functions-framework
from there, with the repository's library removed from sys.path: if the archive missed a module
or a data file, the import or the request fails here rather than on Google Cloud.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from orchestra.processes import free_port, stop_group

from .conftest import ROOT

FUNCTIONS = ["alerts", "console", "controller", "dead_letter", "scheduled", "webhooks"]
ENTRY_POINTS = {
    "alerts": "monitoring_alert",
    "console": "console",
    "controller": "controller",
    "dead_letter": "dead_letter",
    "scheduled": "scheduled_task",
    "webhooks": "repo_webhook",
}


def _load_packager() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "package_functions", ROOT / "scripts" / "package_functions.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


packager = _load_packager()


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("functions")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package_functions.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return {name: out / f"{name}.zip" for name in FUNCTIONS}


def _library_files() -> set[str]:
    base = ROOT / "shared" / "orchestra"
    return {
        "orchestra/" + p.relative_to(base).as_posix()
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }


def test_one_archive_per_function(archives: dict[str, Path]) -> None:
    assert packager.available_functions() == FUNCTIONS
    for name, path in archives.items():
        assert path.is_file(), name


def test_packaging_is_reproducible(archives: dict[str, Path], tmp_path: Path) -> None:
    again = packager.package([], tmp_path)
    for name, path in archives.items():
        rebuilt = tmp_path / f"{name}.zip"
        assert rebuilt.read_bytes() == path.read_bytes(), f"{name}.zip differs between two builds"
        assert again[name] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_archive_contents(archives: dict[str, Path]) -> None:
    library = _library_files()
    pins = [
        line.split("#", 1)[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    for name, path in archives.items():
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [i.filename for i in infos]
            assert names == sorted(names), f"{name}: entries not sorted"
            assert archive.read("main.py") == (ROOT / "functions" / name / "main.py").read_bytes()
            assert archive.read("requirements.txt").decode().splitlines() == pins
            assert {n for n in names if n.startswith("orchestra/")} == library
            assert "orchestra/defaults/config.yaml" in names  # package data travels too
            assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
            for info in infos:
                assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
                assert (info.external_attr >> 16) & 0o777 == 0o644, info.filename
                assert info.create_system == 3, info.filename
            for other in FUNCTIONS:
                if other != name:
                    assert not any(n.startswith(f"{other}/") for n in names)


def test_changed_code_changes_the_archive(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    (functions / "probe").mkdir(parents=True)
    (functions / "probe" / "main.py").write_text("x = 1\n")
    first = packager.write_archive(packager.archive_entries("probe", functions), tmp_path / "a.zip")
    same = packager.write_archive(packager.archive_entries("probe", functions), tmp_path / "b.zip")
    (functions / "probe" / "main.py").write_text("x = 2\n")
    changed = packager.write_archive(packager.archive_entries("probe", functions), tmp_path / "c.zip")
    assert first == same != changed


def test_requirements_must_be_exact_pins(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("# runtime\nflask==3.1.3  # web\nnumpy==2.4.6 ; python_version >= '3.11'\n\n")
    assert packager.runtime_requirements(good) == "flask==3.1.3\nnumpy==2.4.6 ; python_version >= '3.11'\n"
    for line in ("flask>=3", "-r other.txt", "git+https://example.com/x.git", "flask"):
        bad = tmp_path / "bad.txt"
        bad.write_text(f"numpy==2.4.6\n{line}\n")
        with pytest.raises(packager.PackagingError, match=r"bad\.txt:2: .* not an exact pin"):
            packager.runtime_requirements(bad)


def test_unknown_function_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        packager.PackagingError, match="functions with a main.py: alerts, console, controller"
    ):
        packager.archive_entries("nope")
    assert packager.main(["nope", "--out", str(tmp_path)]) == 2


# ----- serve each archive from its unzipped directory alone ------------------------------------

# Runs functions-framework with the repository's copy of the library taken off sys.path (the
# editable install adds it), so only the archive's vendored `orchestra` can be imported.
LAUNCHER = """
import os, sys
repo_shared = os.path.realpath(sys.argv[1])
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != repo_shared]
here = os.getcwd()
sys.path.insert(0, here)
import orchestra
location = os.path.realpath(orchestra.__file__)
if not location.startswith(here + os.sep):
    sys.exit(f"orchestra imported from {location}, not from the archive in {here}")
print(f"orchestra from {location}", flush=True)
from functions_framework._cli import _cli
sys.argv = ["functions-framework", *sys.argv[2:]]
_cli()
"""

WEBHOOK_SECRET = "archive-test-secret"


def _request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, data=body, headers=headers or {}, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _push(message: dict[str, Any] | None, message_id: str, attributes: dict[str, str] | None = None) -> bytes:
    """A raw Pub/Sub push request body, as a push subscription sends it."""
    data = base64.b64encode(json.dumps(message).encode()).decode() if message is not None else ""
    return json.dumps(
        {
            "message": {
                "data": data,
                "attributes": attributes or {},
                "messageId": message_id,
                "publishTime": "2026-01-05T12:00:00.000Z",
            },
            "subscription": "projects/orchestra-test/subscriptions/orchestra-test-push",
        }
    ).encode()


@pytest.fixture(scope="module")
def served(archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("served")
    launcher = work / "launch.py"
    launcher.write_text(LAUNCHER)
    store = work / "state.db"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "PYTHONNOUSERSITE": "1",
        "ORCHESTRA_STORE": f"sqlite:///{store}",
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ORCHESTRA_API_TOKENS": "archive-token=user:archive-test",
    }
    servers: dict[str, Any] = {}
    try:
        for name, path in archives.items():
            directory = work / name
            directory.mkdir()
            with zipfile.ZipFile(path) as archive:
                archive.extractall(directory)
            port = free_port()
            log = (work / f"{name}.log").open("w")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-s",
                    str(launcher),
                    str(ROOT / "shared"),
                    "--source",
                    "main.py",
                    "--target",
                    ENTRY_POINTS[name],
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            servers[name] = {
                "process": process,
                "url": f"http://127.0.0.1:{port}",
                "log": work / f"{name}.log",
            }
        deadline = time.monotonic() + 60
        for name, server in servers.items():
            while True:
                if server["process"].poll() is not None:
                    pytest.fail(f"{name} exited:\n{server['log'].read_text()[-3000:]}", pytrace=False)
                try:
                    with socket.create_connection(
                        ("127.0.0.1", int(server["url"].rsplit(":", 1)[1])), timeout=1
                    ):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(
                            f"{name} did not listen:\n{server['log'].read_text()[-3000:]}", pytrace=False
                        )
                    time.sleep(0.1)
        yield {"servers": servers, "store": store}
    finally:
        for server in servers.values():
            stop_group(server["process"], grace_s=10)


def _events(store: Path, source: str) -> list[Any]:
    from orchestra.store.sqlite import SqliteStateStore

    state = SqliteStateStore(store)
    try:
        return state.list_events(source=source, limit=None)
    finally:
        state.close()


def test_archives_import_only_their_vendored_library(served: dict[str, Any]) -> None:
    for name, server in served["servers"].items():
        assert f"/{name}/orchestra/__init__.py" in server["log"].read_text(), name


def test_controller_archive_serves_health(served: dict[str, Any]) -> None:
    url = served["servers"]["controller"]["url"]
    status, body = _request(f"{url}/health")
    assert status == 200, body
    assert json.loads(body)["status"] == "healthy", body
    status, body = _request(f"{url}/runs", headers={"Authorization": "Bearer archive-token"})
    assert status == 200, body
    status, _ = _request(f"{url}/runs")
    assert status == 401


def test_webhook_archive_verifies_signatures(served: dict[str, Any]) -> None:
    url = served["servers"]["webhooks"]["url"]
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1"}
    status, answer = _request(url, body, headers | {"X-Hub-Signature-256": signature})
    assert status == 200, answer
    status, _ = _request(url, body, headers | {"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert status == 401


def test_event_archives_accept_push_deliveries(served: dict[str, Any]) -> None:
    """What the Terraform push subscriptions send: a raw push to URL/projects/P/topics/T."""
    servers = served["servers"]
    topic_path = "/projects/orchestra-test/topics/orchestra-test-schedule"
    status, answer = _request(
        servers["scheduled"]["url"] + topic_path,
        _push({"task": "no-such-task", "environment": "development"}, "sched-1"),
        {"Content-Type": "application/json"},
    )
    # A permanent problem is recorded and acknowledged, never retried.
    assert 200 <= status < 300, answer
    (event,) = _events(served["store"], "scheduled")
    assert event.status == "rejected" and "no-such-task" in (event.reason or "")

    status, answer = _request(
        servers["alerts"]["url"] + "/projects/orchestra-test/topics/orchestra-test-alerts",
        _push(
            {"incident": {"incident_id": "t-1", "state": "OPEN", "summary": "test"}, "version": "test"},
            "al-1",
        ),
        {"Content-Type": "application/json"},
    )
    assert 200 <= status < 300, answer
    assert len(_events(served["store"], "alerts")) == 1

    status, answer = _request(
        servers["dead_letter"]["url"] + "/projects/orchestra-test/topics/orchestra-test-dead-letter",
        _push(
            {"task": "cost"},
            "dl-1",
            {
                "CloudPubSubDeadLetterSourceDeliveryCount": "5",
                "CloudPubSubDeadLetterSourceSubscription": "orchestra-test-scheduled-push",
                "CloudPubSubDeadLetterSourceSubscriptionProject": "orchestra-test",
            },
        ),
        {"Content-Type": "application/json"},
    )
    assert 200 <= status < 300, answer
    from orchestra.store.sqlite import SqliteStateStore

    state = SqliteStateStore(served["store"])
    try:
        (letter,) = state.list_dead_letters(limit=None)
    finally:
        state.close()
    assert letter.message_id == "dl-1" and letter.delivery_attempt == 5
