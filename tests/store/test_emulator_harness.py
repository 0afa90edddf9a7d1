"""The emulator harness itself, exercised with a stand-in emulator: a process that serves HTTP
and leaves a grandchild behind, the way ``gcloud`` leaves a JVM behind."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
from emulators import EmulatorError, EmulatorInfo, start_emulator

_FAKE_EMULATOR = textwrap.dedent(
    """
    import http.server, signal, subprocess, sys, time
    mode, host_port = sys.argv[1], sys.argv[2]
    host, port = host_port.rsplit(":", 1)
    # A grandchild that ignores SIGTERM, so only SIGKILL of the group ends it.
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print("grandchild", child.pid, flush=True)
    if mode == "crash":
        print("fatal: port already in use", flush=True)
        sys.exit(7)
    if mode == "silent":
        time.sleep(600)
    http.server.HTTPServer((host, int(port)), http.server.SimpleHTTPRequestHandler).serve_forever()
    """
)


def fake(mode: str):
    return lambda host_port: [sys.executable, "-c", _FAKE_EMULATOR, mode, host_port]


def grandchild_pid(info_log: Path) -> int:
    for _ in range(100):
        for line in info_log.read_text().splitlines():
            if line.startswith("grandchild "):
                return int(line.split()[1])
        time.sleep(0.05)
    raise AssertionError(f"no grandchild pid in {info_log}")


def is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.05)
    return False


def test_start_waits_for_http_and_stop_kills_the_whole_group(tmp_path: Path) -> None:
    emulator = start_emulator("fake", fake("serve"), project="p", log_dir=tmp_path)
    info = emulator.info
    assert isinstance(info, EmulatorInfo)
    assert info.host == "127.0.0.1" and info.host_port == f"127.0.0.1:{info.port}"
    assert info.url == f"http://127.0.0.1:{info.port}"
    leader = emulator.proc.pid if emulator.proc else -1
    child = grandchild_pid(info.log)
    assert os.getpgid(child) == leader  # same group, not ours
    assert os.getpgid(child) != os.getpgrp()
    emulator.stop(grace_s=0.5)
    assert wait_gone(child), "a grandchild that ignores SIGTERM survived stop()"
    assert not is_running(leader)
    emulator.stop()  # idempotent


def test_an_emulator_that_exits_fails_with_its_log(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError) as info:
        start_emulator("fake", fake("crash"), project="p", log_dir=tmp_path, stop_grace_s=0.3)
    message = str(info.value)
    assert "exited with status 7" in message and "port already in use" in message
    # Both attempts were made and neither left its grandchild running.
    for attempt in (1, 2):
        log = tmp_path / f"fake-{attempt}.log"
        assert wait_gone(grandchild_pid(log))


def test_an_emulator_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="not ready") as info:
        start_emulator(
            "fake", fake("silent"), project="p", log_dir=tmp_path, ready_timeout_s=0.5, stop_grace_s=0.3
        )
    assert "fake-2.log" in str(info.value)
    for attempt in (1, 2):
        assert wait_gone(grandchild_pid(tmp_path / f"fake-{attempt}.log"))


def test_a_missing_command_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="not on PATH"):
        start_emulator("fake", lambda hp: ["no-such-gcloud-binary", hp], project="p", log_dir=tmp_path)


@pytest.mark.emulator
def test_pubsub_emulator_fixture_serves_the_client_library(pubsub_emulator: EmulatorInfo) -> None:
    from google.cloud import pubsub_v1

    assert os.environ["PUBSUB_EMULATOR_HOST"] == pubsub_emulator.host_port
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(pubsub_emulator.project, "harness-check")
    subscription = subscriber.subscription_path(pubsub_emulator.project, "harness-check-sub")
    try:
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic)
        publisher.publish(topic, b"hello", origin="harness").result(timeout=30)
        received_messages: list = []
        for _ in range(10):  # a pull may legitimately return nothing yet
            received_messages = list(
                subscriber.pull(subscription=subscription, max_messages=1, timeout=30).received_messages
            )
            if received_messages:
                break
        [received] = received_messages
        assert received.message.data == b"hello"
        assert dict(received.message.attributes) == {"origin": "harness"}
        subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
    finally:
        subscriber.close()
        publisher.stop()


@pytest.mark.emulator
def test_firestore_emulator_fixture_sets_the_environment(firestore_emulator: EmulatorInfo) -> None:
    assert os.environ["FIRESTORE_EMULATOR_HOST"] == firestore_emulator.host_port
    assert firestore_emulator.log.is_file()
