"""Cloud Functions: cold start and end-to-end throughput, as ratios against floors measured here.

Cold start (fresh interpreter per sample, median of several):
- import: loading each functions/*/main.py the way functions-framework does, against the floor
  of importing functions_framework + google.cloud.firestore alone (target <= 1.2x);
- ready: the import plus building the application a first request needs (configuration, the
  Firestore store client, the runner), against the same floor.

End to end (Pub/Sub and Firestore emulators, real functions-framework processes): 500 messages
published to a topic pushed to ``scheduled_task``; every message must give exactly one run, each
executed once. Printed as messages/s beside a bare function that writes one Firestore document
per message behind the same push subscription settings.

Run: .venv/bin/python bench/functions.py [--messages N] [--samples N] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

FUNCTIONS = ("scheduled", "alerts", "controller", "webhooks", "dead_letter")
PROJECT = "orchestra-bench"

FLOOR = """
import time
t = time.perf_counter()
import functions_framework, google.cloud.firestore
print(time.perf_counter() - t)
"""

LOAD = """
import importlib.util, os, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("main", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter() - t
from orchestra.app import get_app
get_app()
print(imported, time.perf_counter() - t)
"""

CONFIG = """
default_environment: development
environments:
  development: {automation_level: 1}
runner:
  retry: {attempts: 3, initial_seconds: 0.05, max_seconds: 0.5, max_deliveries: 5}
"""

BARE_FUNCTION = """
import functions_framework
from google.cloud import firestore

client = firestore.Client(project=%r)


@functions_framework.cloud_event
def bare(event):
    message = event.data["message"]
    client.collection("bare").document(message["messageId"]).set({"data": message.get("data")})
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold-start probe failed:\n{out.stderr[-2000:]}")
    return [float(x) for x in out.stdout.split()]


def cold_start(samples: int) -> None:
    env = {
        "ORCHESTRA_STORE": f"firestore://{PROJECT}",
        # The client is created, never used: point it at an emulator address so no credentials
        # are looked up.
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
        "ORCHESTRA_LOG_LEVEL": "ERROR",
    }
    floors: list[float] = []
    imported: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
    ready: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
    import_ratio: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
    ready_ratio: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
    # Rounds interleave the floor with every function so a busy machine slows both alike; the
    # ratio is the median of per-round ratios.
    for _ in range(samples):
        floor = _python(FLOOR)[0]
        floors.append(floor)
        for name in FUNCTIONS:
            took_import, took_ready = _python(LOAD, str(ROOT / "functions" / name / "main.py"), env=env)
            imported[name].append(took_import)
            ready[name].append(took_ready)
            import_ratio[name].append(took_import / floor)
            ready_ratio[name].append(took_ready / floor)
    median = statistics.median
    print(f"cold start (median of {samples} interleaved rounds, fresh interpreter each)")
    print(f"  floor: import functions_framework + google.cloud.firestore  {median(floors) * 1000:7.0f} ms")
    print(f"  {'function':<12} {'import':>9} {'ratio':>6}   {'ready*':>9} {'ratio':>6}")
    for name in FUNCTIONS:
        print(
            f"  {name:<12} {median(imported[name]) * 1000:7.0f} ms {median(import_ratio[name]):5.2f}x"
            f"   {median(ready[name]) * 1000:7.0f} ms {median(ready_ratio[name]):5.2f}x"
        )
    worst = max(median(r) for r in import_ratio.values())
    verdict = "meets" if worst <= 1.2 else "MISSES"
    print(f"  worst import ratio {worst:.2f}x: {verdict} the 1.2x target")
    print("  * ready = import + what the first request builds: configuration, Firestore client, runner")


def end_to_end(messages: int) -> None:
    from emulators import firestore_argv, pubsub_argv, start_emulator
    from google.cloud import pubsub_v1
    from orchestra.store.firestore import FirestoreStateStore

    from tests.functions.servers import FunctionServer

    with tempfile.TemporaryDirectory(prefix="bench-functions-") as tmp_dir:
        tmp = Path(tmp_dir)
        firestore = start_emulator("firestore", firestore_argv, project=PROJECT, log_dir=tmp)
        pubsub = start_emulator("pubsub", pubsub_argv(PROJECT), project=PROJECT, log_dir=tmp)
        servers: list[FunctionServer] = []
        try:
            os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.info.host_port
            os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.info.host_port
            config = tmp / "config.yaml"
            config.write_text(CONFIG)
            bare_source = tmp / "bare" / "main.py"
            bare_source.parent.mkdir()
            bare_source.write_text(textwrap.dedent(BARE_FUNCTION % PROJECT))
            env = {
                "ORCHESTRA_STORE": f"firestore://{PROJECT}",
                "FIRESTORE_EMULATOR_HOST": firestore.info.host_port,
                "CONFIG_PATH": str(config),
                "ORCHESTRA_EXTRA_AUTOMATIONS": "tests.functions.plugins",
                "ORCHESTRA_LOG_LEVEL": "ERROR",
            }
            orchestra_fn = FunctionServer("scheduled", env, tmp).launch()
            bare_fn = FunctionServer("bare", env, tmp, source=bare_source).launch()
            servers += [orchestra_fn, bare_fn]
            for server in servers:
                server.wait_ready()
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
            store = FirestoreStateStore(project=PROJECT)

            def push_topic(name: str, server: FunctionServer) -> str:
                topic = publisher.topic_path(PROJECT, name)
                publisher.create_topic(name=topic)
                subscriber.create_subscription(
                    request={
                        "name": subscriber.subscription_path(PROJECT, f"{name}-push"),
                        "topic": topic,
                        "push_config": {"push_endpoint": f"{server.url}/{topic}"},
                        "ack_deadline_seconds": 60,
                        "retry_policy": {
                            "minimum_backoff": {"seconds": 1},
                            "maximum_backoff": {"seconds": 5},
                        },
                    }
                )
                return topic

            counter = tmp / "executions.log"

            def publish_all(topic: str) -> float:
                start = time.perf_counter()
                futures = [
                    publisher.publish(
                        topic, json.dumps({"task": "probe", "params": {"counter": str(counter)}}).encode()
                    )
                    for _ in range(messages)
                ]
                for future in futures:
                    future.result(timeout=60)
                return start

            def wait_for(done: callable, what: str, timeout_s: float = 120) -> float:
                deadline = time.monotonic() + timeout_s
                while not done():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"timed out waiting for {what}")
                    time.sleep(0.5)
                return time.perf_counter()

            bare_topic = push_topic(f"bare-{uuid.uuid4().hex[:6]}", bare_fn)
            start = publish_all(bare_topic)
            end = wait_for(lambda: len(store.query("bare")) >= messages, "the bare function")
            bare_rate = messages / (end - start)

            topic = push_topic(f"tasks-{uuid.uuid4().hex[:6]}", orchestra_fn)
            start = publish_all(topic)
            end = wait_for(
                lambda: len(store.query("runs", where=[("status", "==", "succeeded")])) >= messages,
                "the orchestra runs",
            )
            rate = messages / (end - start)
            time.sleep(2)  # let any stray redelivery land before counting
            runs = store.query("runs")
            keys = counter.read_text().splitlines()
            accepted = [e for e in store.query("events") if e["status"] == "accepted"]
            exactly_once = len(runs) == messages and len(keys) == len(set(keys)) == messages
            print(
                f"\nend to end: {messages} messages, Pub/Sub emulator push -> function -> Firestore emulator"
            )
            print(f"  bare function (1 document per message)   {bare_rate:7.1f} messages/s")
            print(
                f"  scheduled_task (runner + event record)   {rate:7.1f} messages/s  ({rate / bare_rate:.2f}x bare)"
            )
            print(
                f"  runs {len(runs)}, executions {len(keys)} ({len(set(keys))} distinct), "
                f"accepted event records {len(accepted)}: "
                + ("exactly once" if exactly_once else "NOT exactly once")
            )
            store.close()
        finally:
            for server in servers:
                server.stop()
            pubsub.stop()
            firestore.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    cold_start(args.samples)
    if not args.skip_e2e:
        end_to_end(args.messages)


if __name__ == "__main__":
    main()
