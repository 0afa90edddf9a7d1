"""`make dev` itself, end to end (the Makefile target in its own process group): emulators, five
functions, the console, topics and push subscriptions; a message published with gcloud runs an
automation, whose announcement the printed watch command pulls and whose run the console shows
(its login URL works once, as the local identity given); SIGTERM leaves no process behind."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from orchestra.devtopology import READY_LINE
from orchestra.models import RunStatus, TriggerKind

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "orchestra-devtest"
OPERATOR = "dev-operator@localhost"

pytestmark = [pytest.mark.e2e, pytest.mark.emulator]


class Topology:
    """`make dev` exactly as a person types it, with the repository's Makefile, in its own process
    group (as a terminal runs a foreground job). The virtualenv stamp is up to date, so make goes
    straight to the topology."""

    def __init__(self, log_dir: Path) -> None:
        dev_args = f"--project {PROJECT} --log-dir {log_dir} --console-as {OPERATOR}"
        self.proc = subprocess.Popen(
            ["make", "--no-print-directory", "dev", f"DEV_ARGS={dev_args}"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output: list[str] = []
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if re.search(pattern, self.lines.get(timeout=0.5)):
                    return
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
        raise AssertionError(f"{pattern!r} not seen; output:\n{self.text}")

    def value(self, pattern: str) -> str:
        match = re.search(pattern, self.text)
        assert match, f"{pattern!r} not in output:\n{self.text}"
        return match.group(1)


def gcloud_publish(topology: Topology, topic: str, message: str) -> None:
    env = {**os.environ}
    env.update(
        {
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": topology.value(
                r"CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB=(\S+)"
            ),
            "CLOUDSDK_CORE_PROJECT": topology.value(r"CLOUDSDK_CORE_PROJECT=(\S+)"),
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": topology.value(r"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=(\S+)"),
        }
    )
    result = subprocess.run(
        ["gcloud", "pubsub", "topics", "publish", topic, f"--message={message}", "--attribute=origin=test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def watched_announcements(topology: Topology, wanted: str, timeout: float = 60) -> str:
    """Run the printed watch command (as a person pastes it) until ``wanted`` is in its output."""
    command = topology.value(
        r"(?m)^  (\S+=\S+ .*gcloud pubsub subscriptions pull orchestra-events-watch .*)$"
    )
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        seen += result.stdout
        if wanted in seen:
            return seen
    raise AssertionError(f"{wanted!r} not pulled with {command!r}; got:\n{seen}")


def console_get(url: str, cookie: str | None = None) -> http.client.HTTPResponse:
    """One GET without following redirects (the login answers 303 with the session cookie)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    response.read()
    return response


def console_page(url: str, cookie: str) -> str:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    connection.request(
        "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers={"Cookie": cookie}
    )
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 200, f"{url}: {response.status}\n{body}"
    return body


def check_console(login_url: str, run_id: str) -> None:
    """The printed login URL signs in once, as the operator given to make dev, and the console
    reads the emulator's Firestore (the run the scheduled message caused is listed)."""
    base = login_url.split("/login", 1)[0]
    assert console_get(base + "/").status == 401
    signed_in = console_get(login_url)
    assert signed_in.status == 303 and signed_in.getheader("Location") == "/"
    cookie = (signed_in.getheader("Set-Cookie") or "").split(";", 1)[0]
    assert cookie.startswith("orchestra_console_session=")
    overview = console_page(base + "/", cookie)
    assert f'id="identity">{OPERATOR}<' in overview.replace("\n", ""), overview
    assert run_id in console_page(base + "/runs?task=cost", cookie)
    assert console_page(base + "/deployments", cookie).count('class="gates"') >= 1
    assert console_get(login_url).status == 401  # the link works once


def port_open(host_port: str) -> bool:
    host, port = host_port.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def assert_group_gone(pgid: int) -> None:
    """No process left in the group. Killed processes may linger a moment as zombies until init
    reaps them; a live one would stay."""
    deadline = time.monotonic() + 10
    while True:
        found = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
        if found.returncode == 1:
            return
        if time.monotonic() > deadline:
            states = subprocess.run(
                ["ps", "-o", "pid,stat,cmd", "-g", str(pgid)], capture_output=True, text=True
            )
            raise AssertionError(f"process group {pgid} still has processes:\n{states.stdout}")
        time.sleep(0.2)


def test_make_dev_topology(tmp_path, monkeypatch):
    topology = Topology(tmp_path / "dev")
    try:
        topology.wait_for(re.escape(READY_LINE), timeout=120)
        firestore = topology.value(r"FIRESTORE_EMULATOR_HOST=(\S+)")
        pubsub = topology.value(r"PUBSUB_EMULATOR_HOST=(\S+)")
        function_urls = re.findall(r"^  \w+ +http://(\S+) ", topology.text, re.M)
        groups = [int(g) for g in topology.value(r"process groups: ([\d ]+)").split()]
        # five functions and the console; two emulators, five functions and the console
        assert len(function_urls) == 6 and len(groups) == 8
        assert re.search(
            rf"^  console +http://\S+ +operator console, acting as {OPERATOR}$", topology.text, re.M
        )
        login_url = topology.value(r"(?m)^  (http://\S+/login\?token=\S+)$")

        gcloud_publish(
            topology,
            "orchestra-schedule",
            json.dumps({"task": "cost", "environment": "development", "mode": "analyze"}),
        )
        # A dead letter (what Pub/Sub forwards after the last failed attempt) is recorded too.
        gcloud_publish(topology, "orchestra-dead-letter", json.dumps({"task": "cost", "note": "gave up"}))

        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore)
        from orchestra.store.firestore import FirestoreStateStore

        store = FirestoreStateStore(project=PROJECT)
        deadline = time.monotonic() + 60
        runs, letters = [], []
        while time.monotonic() < deadline and not (runs and runs[0].status != RunStatus.running and letters):
            runs = store.list_runs(task="cost", limit=None)
            letters = store.list_dead_letters(limit=None)
            time.sleep(0.5)
        assert len(runs) == 1, topology.text
        run = runs[0]
        assert run.status == RunStatus.succeeded and run.trigger_kind == TriggerKind.scheduled
        assert run.environment == "development" and run.mode == "analyze" and run.findings
        assert len(letters) == 1 and "gave up" in (letters[0].data or "")
        store.close()
        pulled = watched_announcements(topology, run.id)
        assert "dev.orchestra.run.finished.v1" in pulled
        check_console(login_url, run.id)

        # SIGTERM to the whole job, make and the topology both: the topology stops everything it
        # started and exits 0; make, having waited for it, dies of the signal.
        os.killpg(topology.proc.pid, signal.SIGTERM)
        assert topology.proc.wait(timeout=120) == -signal.SIGTERM, topology.text
    finally:
        if topology.proc.poll() is None:
            os.killpg(topology.proc.pid, signal.SIGKILL)
            topology.proc.wait(timeout=10)

    assert "every process it started is gone" in topology.text
    for pgid in [topology.proc.pid, *groups]:  # make's own group, then each one the topology started
        assert_group_gone(pgid)
    for host_port in (firestore, pubsub):
        port = host_port.rsplit(":", 1)[1]
        java = subprocess.run(["pgrep", "-f", f"java .*--port={port}"], capture_output=True, text=True)
        assert java.returncode == 1, f"emulator JVM on port {port} still running: {java.stdout}"
    for host_port in [firestore, pubsub, *function_urls]:
        assert not port_open(host_port), f"{host_port} still accepts connections"
