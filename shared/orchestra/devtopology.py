"""`make dev`: the whole event-driven topology on this machine.

Starts the Firestore and Pub/Sub emulators, the five Cloud Functions (functions-framework, one
process each), creates the topics and push subscriptions that Eventarc and Pub/Sub provide in
the cloud (retry policy, dead-letter policy to the dead-letter topic), and runs a local
scheduler that publishes each configured cron slot to the schedule topic, as Cloud Scheduler
would. Prints the URLs and ready-to-paste commands, then ``orchestra dev ready``.

Every child runs in its own process group (the ``gcloud`` emulator wrapper spawns a ``java``
grandchild that outlives a plain kill); Ctrl-C or SIGTERM stops every group it started.

    python -m orchestra.devtopology [--project P] [--config FILE] [--environment ENV]

What the SDK's Pub/Sub emulator (0.8.x) does, as observed: a push is the raw JSON
``{"subscription", "message": {"data", "attributes", "messageId", "message_id", "publishTime",
"publish_time"}}`` with ``attributes: {}`` when the message has none (functions-framework
converts it to a ``messagePublished`` CloudEvent; the topic in the push URL path gives the event
its source). It accepts the retry and dead-letter policies, so the subscriptions are the ones the
cloud has, but it neither reliably redelivers a push answered with 5xx nor forwards it to the
dead-letter topic, and sends no ``deliveryAttempt``: publish to the dead-letter topic to
exercise the dead-letter function. ``gcloud`` wants credentials even for the emulator; the
printed command points it at a dummy token file.

The functions publish their announcements (:mod:`orchestra.announcements`) to the
``orchestra-events`` topic; its pull subscription ``orchestra-events-watch`` is there to watch
them with the printed ``gcloud pubsub subscriptions pull`` command.

The operator console (``orchestra console``) runs too, in its own process group, against the
emulator's Firestore; its one-time login URL is printed with the other URLs. The emulator has no
Google accounts, so the console acts as an explicit local identity: ``--console-as``, else
``user:$USER`` (the identity of the printed controller token too).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .clock import Clock, SystemClock, isoformat
from .processes import free_port, log_tail, signal_group, stop_groups
from .scheduling import Schedule, Slot

READY_LINE = "orchestra dev ready"
DEFAULT_PROJECT = "orchestra-dev"
EMULATOR_READY_S = 90.0
FUNCTION_READY_S = 60.0
CONSOLE = "console"
LOGIN_LINE = "console: http"
STOP_GRACE_S = 5.0
PUBLISHER_STOP_S = 5.0  # flushing what the local scheduler published, at most


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    target: str
    topic: str | None = None  # the topic whose push subscription delivers to it
    dead_letter: bool = True  # failed deliveries go to the dead-letter topic


SCHEDULE_TOPIC = "orchestra-schedule"
ALERTS_TOPIC = "orchestra-alerts"
DEAD_LETTER_TOPIC = "orchestra-dead-letter"
EVENTS_TOPIC = "orchestra-events"
EVENTS_WATCH_SUBSCRIPTION = "orchestra-events-watch"
TOPICS = (SCHEDULE_TOPIC, ALERTS_TOPIC, DEAD_LETTER_TOPIC, EVENTS_TOPIC)

FUNCTIONS = (
    FunctionSpec("scheduled", "scheduled_task", SCHEDULE_TOPIC),
    FunctionSpec("alerts", "monitoring_alert", ALERTS_TOPIC),
    FunctionSpec("controller", "controller"),
    FunctionSpec("webhooks", "repo_webhook"),
    # A dead letter that cannot be recorded must not be dead-lettered again: it is retried.
    FunctionSpec("dead_letter", "dead_letter", DEAD_LETTER_TOPIC, dead_letter=False),
)


def subscription_id(topic: str) -> str:
    return f"{topic}-push"


class Interrupted(Exception):
    """A stop was requested while the topology was starting."""


class StartError(Exception):
    """A component did not start; the message carries what to look at."""


@dataclass
class Child:
    """One started process, leader of its own process group."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes]
    url: str
    expected_exit: bool = False

    @property
    def pgid(self) -> int:
        return self.proc.pid


class ProcessSupervisor:
    """Starts children in their own process groups and stops every group it started."""

    def __init__(self, log_dir: Path, echo: Callable[[str], None]) -> None:
        self.log_dir = log_dir
        self.echo = echo
        self.children: list[Child] = []
        self._lock = threading.Lock()

    def start(
        self, name: str, argv: list[str], *, env: dict[str, str], url: str, cwd: Path, prefix_output: bool
    ) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        out: IO[bytes] = log.open("wb")
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if prefix_output else out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name, argv, log, proc, url)
        with self._lock:
            self.children.append(child)
        if prefix_output:
            threading.Thread(target=self._pump, args=(child, out), name=f"out-{name}", daemon=True).start()
        else:
            out.close()
        return child

    def _pump(self, child: Child, out: IO[bytes]) -> None:
        assert child.proc.stdout is not None
        with out:
            for raw in child.proc.stdout:
                out.write(raw)
                out.flush()
                self.echo(f"[{child.name}] {raw.decode(errors='replace').rstrip()}")

    def exited(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None and not c.expected_exit]

    def stop(self, child: Child) -> None:
        """SIGTERM the child's group without waiting (``stop_all`` makes sure it is gone)."""
        child.expected_exit = True
        signal_group(child.pgid, signal.SIGTERM)

    def stop_all(self, grace_s: float = STOP_GRACE_S) -> None:
        with self._lock:
            children = list(self.children)
        for child in children:
            child.expected_exit = True
        stop_groups([c.proc for c in children], grace_s)


def http_answers(url: str, *, expect_ok: bool) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200 or not expect_ok
    except urllib.error.HTTPError:
        return not expect_ok  # any HTTP answer means the server is up
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


# --------------------------------------------------------------------------- local scheduler


class LocalScheduler:
    """Publishes each cron slot when it comes, like Cloud Scheduler: no catch-up of slots that
    passed before it started, and after a pause (a laptop asleep) only the latest missed slot of
    each schedule."""

    def __init__(self, schedules: Iterable[Schedule], publish: Callable[[Slot], str], clock: Clock) -> None:
        self.schedules = list(schedules)
        self.publish = publish
        self.clock = clock
        now = clock.now()
        self._last: dict[tuple[str, str], dt.datetime] = {s.key: s.latest_due(now).at for s in self.schedules}

    def due(self, now: dt.datetime) -> list[Slot]:
        slots = []
        for schedule in self.schedules:
            slot = schedule.latest_due(now)
            if slot.at > self._last[schedule.key]:
                slots.append(slot)
        return slots

    def run_due(self) -> list[tuple[Slot, str]]:
        """Publish what is due; returns (slot, message id) for each slot published."""
        published = []
        for slot in self.due(self.clock.now()):
            message_id = self.publish(slot)
            self._last[(slot.task, slot.environment)] = slot.at
            published.append((slot, message_id))
        return published

    def seconds_to_next(self, now: dt.datetime, cap: float = 30.0) -> float:
        waits = [(s.next_after(now).at - now).total_seconds() for s in self.schedules]
        return max(0.05, min([cap, *waits]))


def scheduled_message(slot: Slot, mode: str) -> bytes:
    """What the Cloud Scheduler job publishes for this slot (the scheduled function's format).
    The slot's trigger id makes the run the same one the continuous controller would make."""
    body = {"task": slot.task, "environment": slot.environment, "mode": mode, "trigger_id": slot.trigger_id}
    return json.dumps(body).encode()


# --------------------------------------------------------------------------- the topology


@dataclass
class DevOptions:
    root: Path
    project: str = DEFAULT_PROJECT
    host: str = "127.0.0.1"
    config: Path | None = None
    environment: str | None = None
    run_mode: str = "analyze"
    log_dir: Path = Path(".orchestra/dev")
    min_backoff_s: int = 1
    max_backoff_s: int = 60
    max_delivery_attempts: int = 5
    functions_framework: str | None = None
    console_as: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Endpoints:
    firestore: str = ""
    pubsub: str = ""
    functions: dict[str, str] = field(default_factory=dict)
    console: str = ""
    console_login: str = ""


class DevTopology:
    def __init__(self, options: DevOptions, *, echo: Callable[[str], None] | None = None) -> None:
        self.options = options
        self._print_lock = threading.Lock()
        self.echo = echo or self._print
        self.supervisor = ProcessSupervisor(options.log_dir, self.echo)
        self.stop_event = threading.Event()
        # Set by the signal handler: a plain assignment, since a handler that takes a lock (an
        # Event's, the output's) deadlocks when it interrupts the main thread holding it — and
        # the SIGTERM of the job arrives twice (make forwards the one it got too).
        self.stop_signal: str | None = None
        self.endpoints = Endpoints()
        self.api_token = os.environ.get("ORCHESTRA_DEV_TOKEN") or secrets.token_urlsafe(18)
        self.webhook_secret = os.environ.get("GITHUB_WEBHOOK_SECRET") or secrets.token_urlsafe(18)
        self.scheduler: LocalScheduler | None = None
        self._publisher: Any = None

    def _print(self, line: str) -> None:
        # A closed terminal or pipe must not abort stopping the children.
        with self._print_lock, contextlib.suppress(OSError):
            print(line, flush=True)

    # ------------------------------------------------------------------ startup
    def _check_prerequisites(self) -> str:
        missing = [f"functions/{f.name}/main.py" for f in FUNCTIONS if not self._function_source(f).is_file()]
        if missing:
            raise StartError(
                f"run from the repository root: missing {', '.join(missing)} under {self.options.root}"
            )
        if shutil.which("gcloud") is None:
            raise StartError(
                "gcloud is not on PATH: install the Google Cloud SDK with the emulator components"
            )
        ff = self.options.functions_framework or str(Path(sys.executable).parent / "functions-framework")
        if not Path(ff).is_file():
            found = shutil.which("functions-framework")
            if found is None:
                raise StartError(
                    f"functions-framework not found beside {sys.executable} nor on PATH (make venv)"
                )
            ff = found
        if self.options.config is not None and not self.options.config.is_file():
            raise StartError(f"--config {self.options.config}: file not found")
        return ff

    def _function_source(self, spec: FunctionSpec) -> Path:
        return self.options.root / "functions" / spec.name / "main.py"

    def _wait(self, targets: dict[str, tuple[Child, str, bool]], timeout_s: float) -> list[str]:
        """Wait until every child answers HTTP (200 when ``expect_ok``, else any answer);
        returns the names of those that exited or did not answer in time."""
        pending = dict(targets)
        deadline = time.monotonic() + timeout_s
        failed: list[str] = []
        while pending:
            if self.stopping():
                raise Interrupted
            for name, (child, url, expect_ok) in list(pending.items()):
                if child.proc.poll() is not None:
                    failed.append(name)
                    del pending[name]
                elif http_answers(url, expect_ok=expect_ok):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                failed.extend(pending)
                break
            if pending:
                time.sleep(0.2)
        return failed

    def _start_emulator(self, name: str) -> Child:
        host = self.options.host
        port = free_port(host)
        if name == "firestore":
            argv = ["gcloud", "emulators", "firestore", "start", f"--host-port={host}:{port}"]
        else:
            argv = ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={host}:{port}"]
            argv.append(f"--project={self.options.project}")
        env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        return self.supervisor.start(
            f"{name}-emulator",
            argv,
            env=env,
            url=f"{host}:{port}",
            cwd=self.options.root,
            prefix_output=False,
        )

    def _start_functions(self, functions_framework: str) -> dict[str, Child]:
        env = self.function_env()
        host = self.options.host
        started = {}
        for spec in FUNCTIONS:
            url = f"http://{host}:{free_port(host)}"
            argv = [
                functions_framework,
                "--source",
                str(self._function_source(spec)),
                "--target",
                spec.target,
            ]
            argv += ["--host", host, "--port", url.rsplit(":", 1)[1]]
            started[spec.name] = self.supervisor.start(
                spec.name, argv, env=env, url=url, cwd=self.options.root, prefix_output=True
            )
            self.endpoints.functions[spec.name] = url
        return started

    def local_identity(self) -> str:
        """Who the console (and the printed controller token) act as: there are no Google
        accounts under the emulator."""
        given = (self.options.console_as or "").strip()
        return given or f"user:{os.environ.get('USER', 'developer')}"

    def console_argv(self, port: int) -> list[str]:
        """``orchestra console`` on the emulator's Firestore (``ORCHESTRA_STORE`` and
        ``FIRESTORE_EMULATOR_HOST`` come from :meth:`function_env`), as the local identity."""
        return [
            sys.executable,
            "-m",
            "orchestra.cli.main",
            "console",
            "--host",
            self.options.host,
            "--port",
            str(port),
            "--as",
            self.local_identity(),
        ]

    def _start_console(self) -> Child:
        host = self.options.host
        port = free_port(host)
        url = f"http://{host}:{port}"
        child = self.supervisor.start(
            CONSOLE,
            self.console_argv(port),
            env=self.function_env(),
            url=url,
            cwd=self.options.root,
            prefix_output=True,
        )
        self.endpoints.console = url
        return child

    def _login_url(self, child: Child, timeout_s: float) -> str:
        """The one-time login URL the console printed (it prints it before it answers HTTP; the
        output reaches its log through the pump thread)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if child.log.is_file():
                for line in child.log.read_text(errors="replace").splitlines():
                    if line.startswith(LOGIN_LINE):
                        return line.split(" ", 1)[1].strip()
            if child.proc.poll() is not None or time.monotonic() > deadline:
                raise StartError(f"the console printed no login URL; log {child.log}:\n{log_tail(child.log)}")
            time.sleep(0.1)
            if self.stopping():
                raise Interrupted

    def start(self, functions_framework: str) -> None:
        """Emulators, functions and the console start together (the emulators take 10-15 s, the
        others only need the emulators' addresses); then everything is waited for."""
        emulators = {name: self._start_emulator(name) for name in ("firestore", "pubsub")}
        self.endpoints.firestore = emulators["firestore"].url
        self.endpoints.pubsub = emulators["pubsub"].url
        functions = self._start_functions(functions_framework)
        functions[CONSOLE] = self._start_console()
        targets = {n: (c, f"http://{c.url}/", True) for n, c in emulators.items()}
        targets.update({n: (c, f"{c.url}/", False) for n, c in functions.items()})
        failed = self._wait(targets, EMULATOR_READY_S)
        if any(name in functions for name in failed):
            child = functions[next(n for n in failed if n in functions)]
            what = "the console" if child.name == CONSOLE else f"function {child.name}"
            raise StartError(f"{what} did not start; log {child.log}:\n{log_tail(child.log)}")
        if not failed:
            self.endpoints.console_login = self._login_url(functions[CONSOLE], FUNCTION_READY_S)
            return
        # A port picked as free can be taken before the JVM binds it: retry once on new ports,
        # and restart the functions so they get the new addresses.
        for name in failed:
            self.supervisor.stop(emulators[name])
            emulators[name] = self._start_emulator(name)
        for child in functions.values():
            self.supervisor.stop(child)
        self.endpoints.firestore = emulators["firestore"].url
        self.endpoints.pubsub = emulators["pubsub"].url
        functions = self._start_functions(functions_framework)
        functions[CONSOLE] = self._start_console()
        targets = {n: (emulators[n], f"http://{emulators[n].url}/", True) for n in failed}
        targets.update({n: (c, f"{c.url}/", False) for n, c in functions.items()})
        again = self._wait(targets, EMULATOR_READY_S)
        if again:
            child = emulators.get(again[0]) or functions[again[0]]
            raise StartError(f"{again[0]} did not start; log {child.log}:\n{log_tail(child.log)}")
        self.endpoints.console_login = self._login_url(functions[CONSOLE], FUNCTION_READY_S)

    def function_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "ORCHESTRA_STORE": f"firestore://{self.options.project}",
                "FIRESTORE_EMULATOR_HOST": self.endpoints.firestore,
                "PUBSUB_EMULATOR_HOST": self.endpoints.pubsub,
                "PUBSUB_PROJECT_ID": self.options.project,
                "GOOGLE_CLOUD_PROJECT": self.options.project,
                "ORCHESTRA_EVENTS_TOPIC": f"projects/{self.options.project}/topics/{EVENTS_TOPIC}",
                "ORCHESTRA_API_TOKENS": f"{self.api_token}={self.local_identity()}",
                "GITHUB_WEBHOOK_SECRET": self.webhook_secret,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.setdefault("ORCHESTRA_LOG_LEVEL", "INFO")
        env.setdefault("ORCHESTRA_LOG_FORMAT", "text")  # functions log JSON for Cloud Logging otherwise
        if self.options.config is not None:
            env["CONFIG_PATH"] = str(self.options.config.resolve())
        env.update(self.options.extra_env)
        return env

    def create_pubsub(self) -> None:
        """Topics and push subscriptions, through the client library's admin API."""
        os.environ["PUBSUB_EMULATOR_HOST"] = self.endpoints.pubsub
        from google.api_core import exceptions as gexc
        from google.cloud import pubsub_v1
        from google.protobuf import duration_pb2
        from google.pubsub_v1.types import DeadLetterPolicy, PushConfig, RetryPolicy, Subscription

        project = self.options.project
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        for topic in TOPICS:
            with contextlib.suppress(gexc.AlreadyExists):
                publisher.create_topic(name=publisher.topic_path(project, topic))
        retry = RetryPolicy(
            minimum_backoff=duration_pb2.Duration(seconds=self.options.min_backoff_s),
            maximum_backoff=duration_pb2.Duration(seconds=self.options.max_backoff_s),
        )
        for spec in FUNCTIONS:
            if spec.topic is None:
                continue
            topic_path = publisher.topic_path(project, spec.topic)
            # The topic in the push path lets functions-framework give the CloudEvent its source.
            endpoint = f"{self.endpoints.functions[spec.name]}/projects/{project}/topics/{spec.topic}"
            request = Subscription(
                name=subscriber.subscription_path(project, subscription_id(spec.topic)),
                topic=topic_path,
                push_config=PushConfig(push_endpoint=endpoint),
                ack_deadline_seconds=600,
                retry_policy=retry,
            )
            if spec.dead_letter:
                request.dead_letter_policy = DeadLetterPolicy(
                    dead_letter_topic=publisher.topic_path(project, DEAD_LETTER_TOPIC),
                    max_delivery_attempts=self.options.max_delivery_attempts,
                )
            with contextlib.suppress(gexc.AlreadyExists):
                subscriber.create_subscription(request=request)
        # A pull subscription to watch the announcements with (see the banner).
        watch = Subscription(
            name=subscriber.subscription_path(project, EVENTS_WATCH_SUBSCRIPTION),
            topic=publisher.topic_path(project, EVENTS_TOPIC),
            ack_deadline_seconds=60,
        )
        with contextlib.suppress(gexc.AlreadyExists):
            subscriber.create_subscription(request=watch)
        subscriber.close()
        self._publisher = publisher

    def publish_slot(self, slot: Slot) -> str:
        topic = self._publisher.topic_path(self.options.project, SCHEDULE_TOPIC)
        future = self._publisher.publish(
            topic, scheduled_message(slot, self.options.run_mode), origin="orchestra-dev-scheduler"
        )
        return str(future.result(timeout=30))

    def build_scheduler(self, clock: Clock) -> tuple[LocalScheduler, list[str]]:
        from .app import load_config
        from .registry import registry
        from .scheduling import configured_schedules

        # The functions assemble their own app (orchestra.app.build_app) in their processes;
        # the scheduler needs only the configuration, loaded and checked the same way.
        config = load_config(self.options.config, registry=registry)
        found = configured_schedules(config, self.options.environment, registry=registry)
        return LocalScheduler(found.schedules, self.publish_slot, clock), found.unavailable

    def gcloud_token_file(self) -> Path:
        """gcloud wants credentials even for an emulator endpoint; the emulator ignores them."""
        path = self.options.log_dir / "gcloud-emulator-token"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("emulator-does-not-check-tokens\n")
        return path.resolve()

    def gcloud_env(self) -> dict[str, str]:
        """Environment for `gcloud pubsub ...` against the emulator."""
        return {
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{self.endpoints.pubsub}/",
            "CLOUDSDK_CORE_PROJECT": self.options.project,
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(self.gcloud_token_file()),
        }

    def watch_command(self) -> str:
        """The command that pulls the announcements the functions published to the emulator."""
        gcloud_env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.gcloud_env().items())
        return (
            f"{gcloud_env} gcloud pubsub subscriptions pull {EVENTS_WATCH_SUBSCRIPTION} --auto-ack "
            f"--limit=10 --project={self.options.project}"
        )

    # ------------------------------------------------------------------ output
    def banner(self, unavailable: list[str]) -> list[str]:
        o, e = self.options, self.endpoints
        gcloud_env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.gcloud_env().items())
        from .registry import registry

        scheduled = [s.task for s in (self.scheduler.schedules if self.scheduler else [])]
        sample_task = next(iter(scheduled or registry.names() or ["TASK"]))
        message = json.dumps(
            {"task": sample_task, "environment": o.environment or "development", "mode": "analyze"}
        )
        lines = [
            f"orchestra dev topology (project {o.project}; logs in {o.log_dir})",
            f"  Firestore emulator  {e.firestore:<22} FIRESTORE_EMULATOR_HOST={e.firestore}",
            f"  Pub/Sub emulator    {e.pubsub:<22} PUBSUB_EMULATOR_HOST={e.pubsub}",
        ]
        for spec in FUNCTIONS:
            via = f"push from {spec.topic}" if spec.topic else "HTTP"
            lines.append(f"  {spec.name:<12} {e.functions[spec.name]:<29} {via}")
        lines.append(f"  {CONSOLE:<12} {e.console:<29} operator console, acting as {self.local_identity()}")
        lines.append(
            f"  subscriptions: {', '.join(subscription_id(f.topic) for f in FUNCTIONS if f.topic)} "
            f"(retry {o.min_backoff_s}-{o.max_backoff_s}s; dead letters after "
            f"{o.max_delivery_attempts} attempts to {DEAD_LETTER_TOPIC})"
        )
        clock = SystemClock()
        for schedule in self.scheduler.schedules if self.scheduler else []:
            nxt = isoformat(schedule.next_after(clock.now()).at)
            lines.append(f"  scheduler: {schedule.task}@{schedule.environment} '{schedule.cron}' next {nxt}")
        if unavailable:
            lines.append(f"  not scheduled (automation not available): {', '.join(unavailable)}")
        lines += [
            "Publish a scheduled task:",
            f"  {gcloud_env} gcloud pubsub topics publish {SCHEDULE_TOPIC} --message={shlex.quote(message)} --attribute=origin=manual",
            "Call the controller API:",
            f"  curl -s -X POST -H 'Authorization: Bearer {self.api_token}' -H 'Content-Type: application/json' "
            f'{e.functions["controller"]}/tasks/{sample_task} -d \'{{"mode": "analyze"}}\'',
            "Watch the announcements (runs finished, approvals, breakers, dead letters; CloudEvents):",
            f"  {self.watch_command()}",
            "Open the console (the link works once; restart make dev for a new one):",
            f"  {e.console_login}",
            "See the runs:",
            f"  FIRESTORE_EMULATOR_HOST={e.firestore} .venv/bin/orchestra runs list --store firestore://{o.project}",
            f"Webhook secret (GITHUB_WEBHOOK_SECRET): {self.webhook_secret}",
            f"process groups: {' '.join(str(c.pgid) for c in self.supervisor.children)}",
            READY_LINE,
        ]
        return lines

    # ------------------------------------------------------------------ run
    def run(self, clock: Clock | None = None) -> int:
        clock = clock or SystemClock()
        try:
            ff = self._check_prerequisites()
            self.echo("starting the Firestore and Pub/Sub emulators, five functions and the console…")
            self.start(ff)
            self.create_pubsub()
            self.scheduler, unavailable = self.build_scheduler(clock)
            for line in self.banner(unavailable):
                self.echo(line)
            return self._serve(clock)
        except Interrupted:
            self.echo("stopped during startup")
            return 0
        except StartError as exc:
            self.echo(f"error: {exc}")
            return 1
        finally:
            # The publisher first, while the Pub/Sub emulator still answers: a publish left pending
            # against a stopped emulator would retry for minutes and hold the exit.
            self._stop_publisher()
            self.supervisor.stop_all()
            self.echo("orchestra dev stopped: every process it started is gone")

    def _stop_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is None:
            return

        def stop() -> None:
            with contextlib.suppress(Exception):
                publisher.stop()

        stopping = threading.Thread(target=stop, name="publisher-stop", daemon=True)
        stopping.start()
        stopping.join(PUBLISHER_STOP_S)

    def _serve(self, clock: Clock) -> int:
        assert self.scheduler is not None
        while not self.stopping():
            dead = self.supervisor.exited()
            if dead:
                child = dead[0]
                self.echo(
                    f"error: {child.name} exited with status {child.proc.returncode}; log {child.log}:\n"
                    f"{log_tail(child.log)}"
                )
                return 1
            try:
                for slot, message_id in self.scheduler.run_due():
                    self.echo(f"scheduler: published {slot.trigger_id} as message {message_id}")
            except Exception as exc:  # noqa: BLE001 - report and keep the topology up
                self.echo(f"scheduler: publishing failed: {type(exc).__name__}: {exc}")
            time.sleep(min(1.0, self.scheduler.seconds_to_next(clock.now())))
        self.echo(f"{self.stop_signal or 'stop'}: stopping every process")
        return 0

    def stopping(self) -> bool:
        return self.stop_signal is not None or self.stop_event.is_set()

    def request_stop(self, signum: int, frame: object) -> None:
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum).name


def parse_args(argv: list[str] | None = None) -> DevOptions:
    parser = argparse.ArgumentParser(
        prog="python -m orchestra.devtopology", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (has functions/)")
    parser.add_argument("--project", default=DEFAULT_PROJECT, help="emulator project id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", type=Path, default=os.environ.get("CONFIG_PATH") or None)
    parser.add_argument("--environment", help="target of schedules without their own environments")
    parser.add_argument("--run-mode", choices=("analyze", "apply"), default="analyze")
    parser.add_argument("--log-dir", type=Path, default=Path(".orchestra/dev"))
    parser.add_argument("--min-backoff", type=int, default=1, help="subscription retry minimum (s)")
    parser.add_argument("--max-backoff", type=int, default=60, help="subscription retry maximum (s, <= 600)")
    parser.add_argument("--max-delivery-attempts", type=int, default=5, help="5-100, then dead-lettered")
    parser.add_argument(
        "--console-as",
        metavar="IDENTITY",
        help="who the console and the controller token act as (default user:$USER; the emulator has "
        "no Google accounts)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.min_backoff <= args.max_backoff <= 600:
        parser.error("backoff: need 0 <= --min-backoff <= --max-backoff <= 600")
    if not 5 <= args.max_delivery_attempts <= 100:
        parser.error("--max-delivery-attempts: Pub/Sub accepts 5-100")
    return DevOptions(
        root=args.root.resolve(),
        project=args.project,
        host=args.host,
        config=args.config,
        environment=args.environment,
        run_mode=args.run_mode,
        log_dir=args.log_dir,
        min_backoff_s=args.min_backoff,
        max_backoff_s=args.max_backoff,
        max_delivery_attempts=args.max_delivery_attempts,
        console_as=args.console_as,
    )


def main(argv: list[str] | None = None) -> int:
    topology = DevTopology(parse_args(argv))
    signal.signal(signal.SIGINT, topology.request_stop)
    signal.signal(signal.SIGTERM, topology.request_stop)
    return topology.run()


if __name__ == "__main__":
    sys.exit(main())
