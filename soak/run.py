"""``make soak`` / ``python -m soak``: the topology of ``make dev`` under a stream of events and
seeded chaos, then recovery, then the invariant checker. Exits 1 on any violation (each named by
its event), 2 when the soak could not run.

    python -m soak [--events N] [--rate R] [--seed S] [--minutes M] [--fault-every F] [--work DIR]

The first ``--clean`` share of the events is sent before any fault: the baseline the chaos phase's
throughput and latency are printed beside. ``--minutes`` stretches the stream to at least that
long (the rate is lowered to fit). The log (``WORK/soak.log``) timestamps every fault; the report
is also written as JSON (``WORK/report.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import heapq
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestra.devtopology import DevOptions, Interrupted, StartError
from orchestra.errors import OrchestraError
from orchestra.processes import signal_group

from .chaos import Chaos
from .checker import STAND_IN, Report, check, expected_trigger
from .events import ENVIRONMENTS, Endpoints, Plan, Sender, SoakEvent, make_plan
from .progress import Progress, unfinished_runs
from .topology import SoakTopology

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "orchestra-soak"
# Recovery passes a Pub/Sub message may stay without its outcome before the soak delivers it again
# or forwards it to the dead-letter topic (the SDK's emulator drops some failed pushes).
STALLED_PASSES = 3
MAX_REDELIVERIES = 5
STREAM_PASS_S = 20.0
STORE_READ_S = 300.0
WARMUP = 10  # events that wake every function up before the clean phase is timed
NON_TERMINAL = ("running", "queued", "awaiting_approval", "awaiting_verification")
STOP_JOIN_S = 30.0  # how long a stop waits for the chaos to put back what it holds

CONFIG = """\
# The soak's configuration: short leases, retries and breaker windows so recovery is quick.
default_environment: development
environments:
  development: {{automation_level: 3}}
  staging: {{automation_level: 3}}
thresholds:
  cpu: {{metric: cpu, above: 70, for_minutes: 15, focus: cpu}}
runner:
  retry: {{attempts: 3, initial_seconds: 0.05, max_seconds: 0.2, max_deliveries: 5}}
  lease: {{seconds: {lease}, heartbeat_seconds: {heartbeat}}}
  breaker: {{failure_threshold: 8, window_seconds: 20, open_seconds: {open_s}, probe_lease_seconds: 10}}
automations:
  soak:
    settings:
      ledger: {ledger}
      targets: {targets}
      heal_file: {heal}
      seed: {seed}
      transient_rate: {transient}
      apply_failure_rate: {apply_fail}
      verify_failure_rate: {verify_fail}
      verify_delay_seconds: {verify_delay}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="events to publish (>= 20)")
    parser.add_argument("--rate", type=float, default=10.0, help="events per second (at most)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--minutes", type=float, default=0.0, help="stretch the stream to at least this")
    parser.add_argument("--fault-every", type=float, default=5.0, help="mean seconds between faults")
    parser.add_argument("--clean", type=float, default=0.1, help="share of events sent before any fault")
    parser.add_argument("--duplicates", type=float, default=0.1, help="share of events sent twice")
    parser.add_argument("--lease", type=float, default=6.0, help="run lease (seconds)")
    parser.add_argument("--transient-rate", type=float, default=0.05)
    parser.add_argument("--apply-failure-rate", type=float, default=0.02)
    parser.add_argument("--verify-failure-rate", type=float, default=0.02)
    parser.add_argument("--verify-delay", type=float, default=0.3, help="seconds between apply and verify")
    parser.add_argument("--recover-every", type=float, default=8.0, help="seconds between recovery passes")
    parser.add_argument("--recovery-timeout", type=float, default=240.0)
    parser.add_argument(
        "--stand-in-patience",
        type=float,
        default=30.0,
        help="seconds between two pushes of one message by the soak's stand-in for Pub/Sub",
    )
    parser.add_argument("--work", type=Path, default=None, help="default .orchestra/soak/seed-S")
    args = parser.parse_args(argv)
    if args.events < 20:
        parser.error("--events: at least 20")
    if not 0 < args.rate <= 500:
        parser.error("--rate: between 0 and 500 events per second")
    if args.fault_every <= 0 or args.lease < 2:
        parser.error("--fault-every must be positive and --lease at least 2 seconds")
    return args


class Log:
    """Timestamped lines to the soak's log file, and to stdout for the important ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("a", buffering=1)

    def __call__(self, line: str, *, echo: bool = False) -> None:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._file.write(f"{stamp} {line}\n")
        if echo:
            print(f"{stamp} {line}", flush=True)

    def close(self) -> None:
        self._file.close()


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = (args.work or ROOT / ".orchestra" / "soak" / f"seed-{args.seed}").resolve()
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.log = Log(self.work / "soak.log")
        self.ledger = self.work / "ledger.jsonl"
        self.targets = self.work / "targets"
        self.heal = self.work / "healed"
        self.config = self.work / "config.yaml"
        self.stop = threading.Event()
        # Set by the signal handler: a plain assignment (a handler that sets an Event takes its
        # lock, and deadlocks when it interrupts a thread of this process holding it).
        self.stop_signal: str | None = None
        self.chaos: Chaos | None = None
        self.chaos_thread: threading.Thread | None = None
        self.sender: Sender | None = None
        self.progress = Progress(max_deliveries=5)
        self.closing = False
        self._recovering: subprocess.Popen[str] | None = None
        self.forwarded: list[str] = []
        self.redelivered: dict[str, int] = {}
        self._pushed: dict[str, float] = {}  # key -> when the stand-in last pushed it (monotonic)
        heartbeat = round(args.lease / 4, 2)
        self.config.write_text(
            CONFIG.format(
                lease=args.lease,
                heartbeat=heartbeat,
                open_s=3,
                ledger=json.dumps(str(self.ledger)),
                targets=json.dumps(str(self.targets)),
                heal=json.dumps(str(self.heal)),
                seed=args.seed,
                transient=args.transient_rate,
                apply_fail=args.apply_failure_rate,
                verify_fail=args.verify_failure_rate,
                verify_delay=args.verify_delay,
            )
        )
        self.env = {
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            "ORCHESTRA_EXTRA_AUTOMATIONS": "soak.plugin",
            "ORCHESTRA_LOG_LEVEL": "WARNING",
            "ORCHESTRA_EVENTS_TOPIC": "",  # announcements are not what the soak measures
        }
        self.topology = SoakTopology(
            DevOptions(
                root=ROOT,
                project=PROJECT,
                config=self.config,
                log_dir=self.work / "logs",
                min_backoff_s=1,
                max_backoff_s=2,
                max_delivery_attempts=5,
                extra_env=self.env,
            ),
            echo=lambda line: self.log(line),
        )

    # ------------------------------------------------------------------ phases
    def run(self) -> int:
        args = self.args
        try:
            ff = self.topology._check_prerequisites()
            self.log(
                "starting the topology of make dev (emulators, five functions, push subscriptions)", echo=True
            )
            self.topology.start(ff)
            self.topology.create_pubsub()
        except (StartError, Interrupted) as exc:
            self.log(f"error: the topology did not start: {exc}", echo=True)
            return 2
        store_host = self.topology.endpoints.firestore
        os.environ.update(
            {**self.env, "CONFIG_PATH": str(self.config), "FIRESTORE_EMULATOR_HOST": store_host}
        )
        self.log(f"topology up: store {store_host} (proxied), functions {self.topology.direct}", echo=True)

        clean = max(10, int(args.events * args.clean))
        plan = make_plan(args.seed, args.events, clean=clean, duplicate_rate=args.duplicates, warmup=WARMUP)
        rate = args.rate
        if args.minutes:
            rate = min(rate, args.events / (args.minutes * 60))
        sender = self.sender = Sender(
            Endpoints(
                project=PROJECT,
                publisher=self.topology._publisher,
                direct=self.topology.direct,
                api_token=self.topology.api_token,
                webhook_secret=self.topology.webhook_secret,
            ),
            log=self.log,
        )
        chaos = self.chaos = Chaos(
            self.topology,
            self.ledger,
            self.work,
            seed=args.seed,
            every_s=args.fault_every,
            lease_s=args.lease,
            log=lambda line: self.log(line, echo=True),
        )
        recoverer = threading.Thread(target=self._recover_loop, name="recover", daemon=True)
        recoverer.start()
        started = time.monotonic()
        self.log(
            f"stream: {len(plan.events)} events at {rate:.2f}/s, seed {args.seed}, first {clean} clean, "
            f"faults every ~{args.fault_every:g} s",
            echo=True,
        )
        chaos_thread = self.chaos_thread = threading.Thread(target=chaos.run, name="chaos", daemon=True)
        streaming = threading.Event()
        platform = threading.Thread(
            target=self._platform_loop, args=(plan, sender, streaming), name="stand-in", daemon=True
        )
        platform.start()
        try:
            self._stream(plan, sender, rate, chaos_thread)
        finally:
            streaming.set()
            platform.join(timeout=120)
            chaos.stop.set()
            chaos_thread.join(timeout=120) if chaos_thread.is_alive() else None
            chaos.resume_all()
        self.log(
            f"stream sent in {time.monotonic() - started:.0f} s; faults {dict(chaos.injected)}", echo=True
        )
        sender.drain()
        settle = self._recover_and_settle(plan, sender)
        self.stop.set()
        recoverer.join(timeout=60)
        return self._check(plan, sender, chaos, settle)

    def _stream(self, plan: Plan, sender: Sender, rate: float, chaos_thread: threading.Thread) -> None:
        rng = random.Random(f"duplicates:{self.args.seed}")
        warmup = [e for e in plan.events if e.phase == "warmup"]
        for event in warmup:
            sender.send(event)
        sender.drain(120)
        app = self._app()
        try:
            self._wait_runs(
                app, [t for e in warmup if e.kind != "alert_open" and (t := expected_trigger(e))], 120
            )
        finally:
            app.close()
        self.log(f"warm-up: {len(warmup)} events done", echo=True)
        start = time.monotonic()
        later: list[tuple[float, int, SoakEvent]] = []
        timed = [e for e in plan.events if e.phase != "warmup"]
        for n, event in enumerate(timed):
            due = start + n / rate
            while later and later[0][0] <= due:
                self._duplicate(heapq.heappop(later)[2], sender, rng)
                if self.stop.is_set():
                    return
            pause = due - time.monotonic()
            if pause > 0 and self.stop.wait(pause):
                return
            if event.phase == "chaos" and not chaos_thread.is_alive():
                self.log(f"chaos starts with event {event.key}", echo=True)
                chaos_thread.start()
            sender.send(event)
            if event.duplicate:
                heapq.heappush(later, (due + rng.uniform(0.2, 5.0), n, event))
            if n and n % 500 == 0:
                self.log(f"sent {n} events", echo=True)
        for _, _, event in sorted(later):
            self._duplicate(event, sender, rng)

    def _duplicate(self, event: SoakEvent, sender: Sender, rng: random.Random) -> None:
        """The same event again: redelivered with its message id, or sent again with its key."""
        pubsub = event.kind in ("scheduled", "doom", "poison", "alert_open", "alert_close")
        if pubsub and (event.kind in ("poison", "doom") or rng.random() < 0.5) and sender.redeliver(event):
            return
        if event.kind in ("poison", "doom"):
            return  # a new message would be an event of its own
        sender.send(event, duplicate=True)

    # ------------------------------------------------------------------ recovery
    def recover_once(self) -> None:
        """`orchestra runs recover` against the emulator's store, as an operator would run it."""
        command = [
            str(Path(sys.executable).parent / "orchestra"),
            "runs",
            "recover",
            "--store",
            f"firestore://{PROJECT}",
        ]
        if self.closing:
            return
        # Its own process group, so that a stop ends it too (see close()).
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._recovering = proc
        try:
            text, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.communicate()
            self.log("runs recover: timed out after 120 s")
            return
        finally:
            self._recovering = None
        text = text.strip()
        if proc.returncode != 0 or "recovered" in text:
            self.log(f"runs recover (exit {proc.returncode}): {text[-600:]}")

    def _recover_loop(self) -> None:
        while not self.stop.wait(self.args.recover_every):
            self.recover_once()

    def _platform_loop(self, plan: Plan, sender: Sender, done: threading.Event) -> None:
        """While the stream runs: messages sent a while ago and still without an outcome are
        delivered again where the emulator dropped them (see :meth:`_stand_in_for_pubsub`)."""
        app = self._app()
        stalled: dict[str, int] = {}
        try:
            while not done.wait(STREAM_PASS_S):
                began = time.monotonic()
                try:
                    found = self.progress.check(
                        app, plan.events, list(sender.sends), before=time.time() - STREAM_PASS_S
                    )
                except Exception as exc:  # noqa: BLE001 - the store may be down right now (chaos)
                    self.log(f"stand-in pass skipped: {type(exc).__name__}: {exc}")
                    continue
                self.log(
                    f"stand-in pass: {len(self.progress.done)} events done (+{found.done}), "
                    f"{len(found.waiting)} waiting; read {found.read} documents in "
                    f"{time.monotonic() - began:.1f} s"
                )
                self._stand_in_for_pubsub(plan, sender, found.waiting, stalled)
        finally:
            app.close()

    def _app(self) -> Any:
        """The soak's own application: its whole-store reads (every run and record of a long
        soak) get a long deadline."""
        from orchestra.app import build_app
        from orchestra.store.firestore import FirestoreStateStore

        store = FirestoreStateStore(project=PROJECT, timeout_s=STORE_READ_S)
        return build_app(config_path=self.config, store=store)

    def _recover_and_settle(self, plan: Plan, sender: Sender) -> list[SoakEvent]:
        """Recovery passes until the store is quiet; then settle events until every breaker closed."""
        app = self._app()
        deadline = time.monotonic() + self.args.recovery_timeout
        previous: tuple[Any, ...] | None = None
        unchanged = 0
        stalled: dict[str, int] = {}
        while time.monotonic() < deadline:
            began = time.monotonic()
            self.recover_once()
            recovered = time.monotonic()
            try:
                found = self.progress.check(app, plan.events, list(sender.sends))
                busy = unfinished_runs(app)
                letters = len(app.store.list_dead_letters(limit=None))
            except OrchestraError as exc:  # a slow or briefly unavailable store: read again
                self.log(f"recovery: reading the store failed ({exc}); again", echo=True)
                self.stop.wait(3)
                continue
            waiting = found.waiting
            snapshot = (len(self.progress.done), busy, letters, len(waiting))
            unchanged = unchanged + 1 if snapshot == previous else 0
            previous = snapshot
            self.log(
                f"recovery: events done {snapshot[0]} (+{found.done}), unfinished runs {busy}, "
                f"dead letters {letters}, events without their outcome yet {len(waiting)} {waiting[:5]} "
                f"(recover {recovered - began:.1f} s, read {found.read} documents in "
                f"{time.monotonic() - recovered:.1f} s)",
                echo=True,
            )
            if not waiting and busy == 0:
                break
            self._stand_in_for_pubsub(plan, sender, waiting, stalled)
            if unchanged >= 20:
                self.log("recovery: nothing changed for 20 passes; checking what there is", echo=True)
                break
            if self.stop.wait(3):
                break
        settle: list[SoakEvent] = []
        for round_ in range(6):
            open_breakers = [b for b in app.store.query("breakers") if b.get("state") != "closed"]
            if not open_breakers:
                break
            self.log(
                f"settle round {round_ + 1}: breakers not closed: {[b.get('name') for b in open_breakers]}",
                echo=True,
            )
            time.sleep(3.5)  # open_seconds: the next call is the half-open probe
            for env in ENVIRONMENTS:
                event = SoakEvent(
                    index=len(plan.events) + len(settle),
                    key=f"s{self.args.seed}-settle-{len(settle):03d}",
                    kind="settle",
                    environment=env,
                    phase="settle",
                )
                settle.append(event)
                sender.send(event)
            sender.drain(60)
            self._wait_runs(app, [e.key for e in settle], 60)
        app.close()
        return settle

    def _stand_in_for_pubsub(
        self, plan: Plan, sender: Sender, waiting: list[str], stalled: dict[str, int]
    ) -> None:
        """Do what Pub/Sub does and the SDK's emulator does not reliably do: a message whose push
        failed (connection lost, 5xx) is delivered again (same message id), and one that ran out
        of deliveries goes to the dead-letter topic. Only for messages left without an outcome
        for several recovery passes; each is logged and counted in the report."""
        keys = plan.keys
        for entry in waiting:
            key = entry.split()[0]
            event = keys.get(key)
            if event is None or event.kind not in (
                "scheduled",
                "doom",
                "poison",
                "alert_open",
                "alert_close",
            ):
                continue
            stalled[key] = stalled.get(key, 0) + 1
            if stalled[key] % STALLED_PASSES:
                continue
            if entry.endswith("(dead letter)"):
                # Its run failed on every delivery: Pub/Sub would have dead-lettered it. Only
                # then: a message merely without an outcome yet (a push still queued in a slow
                # function) is never forwarded, or its late delivery and the replay both apply.
                if key not in self.forwarded and sender.dead_letter(event, 5):
                    self.forwarded.append(key)
                    self.log(
                        f"recovery: {key}: out of deliveries and not dead-lettered by the emulator; forwarded"
                    )
                continue
            tries = self.redelivered.get(key, 0)
            failed = entry.endswith("(redelivery)")  # its run failed transiently: Pub/Sub retries
            if not failed and tries >= MAX_REDELIVERIES:
                continue  # the checker names it if it never comes
            now = time.monotonic()
            if now - self._pushed.get(key, -1e9) < self.args.stand_in_patience:
                continue  # the last push may still be queued in the function: no pile-up
            if sender.redeliver(event, channel=STAND_IN):
                self._pushed[key] = now
                self.redelivered[key] = tries + 1
                self.log(
                    f"recovery: {key}: left undelivered by the emulator; delivered again (same message id)"
                )

    @staticmethod
    def _wait_runs(app: Any, triggers: list[str], timeout_s: float) -> None:
        from orchestra.models import run_id_for

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            runs = [app.store.get_run(run_id_for("soak", t)) for t in triggers]
            if all(r is not None and r.status.value not in NON_TERMINAL for r in runs):
                return
            time.sleep(0.5)

    # ------------------------------------------------------------------ the verdict
    def _check(self, plan: Plan, sender: Sender, chaos: Chaos, settle: list[SoakEvent]) -> int:
        app = self._app()
        try:
            report = check(
                app,
                plan.events + settle,
                list(sender.sends),
                ledger=self.ledger,
                targets=self.targets,
                heal_file=self.heal,
                faults=sum(chaos.injected.values()),
            )
        finally:
            app.close()
        self._print(report, chaos)
        return 0 if report.ok and not chaos.errors else 1

    def _print(self, report: Report, chaos: Chaos) -> None:
        a = self.args
        lines = [
            f"soak: seed {a.seed}, {a.events} events, faults every ~{a.fault_every:g} s "
            f"({', '.join(f'{k} {v}' for k, v in sorted(chaos.injected.items())) or 'none'})",
            report.table(),
        ]
        if self.forwarded or self.redelivered:
            lines.append(
                f"  standing in for Pub/Sub where the emulator dropped messages: {len(self.redelivered)} "
                f"delivered again, {len(self.forwarded)} forwarded to the dead-letter topic"
            )
        for problem in chaos.errors[:20]:
            lines.append(f"  fault not injected: {problem}")
        for violation in report.violations[:50]:
            lines.append(f"  VIOLATION {violation}")
        if len(report.violations) > 50:
            lines.append(f"  … and {len(report.violations) - 50} more (see {self.work / 'report.json'})")
        lines.append("soak: " + ("PASSED" if report.ok and not chaos.errors else "FAILED"))
        text = "\n".join(lines)
        print(text, flush=True)
        self.log(text)
        (self.work / "report.json").write_text(
            json.dumps(
                {
                    "seed": a.seed,
                    "events": report.events,
                    "duplicates": report.duplicates,
                    "faults": dict(chaos.injected),
                    "runs": report.runs,
                    "statuses": report.statuses,
                    "rejections": report.rejections,
                    "ignored": report.ignored,
                    "dead_letters": report.dead_letters,
                    "replayed": report.replayed,
                    "forwarded_by_soak": self.forwarded,
                    "redelivered_by_soak": self.redelivered,
                    "lost": report.lost,
                    "done_twice": report.done_twice,
                    "stuck": report.stuck,
                    "breakers_open": report.breakers_open,
                    "phases": report.phases,
                    "p50_by_kind": report.kinds,
                    "violations": [str(v) for v in report.violations],
                },
                indent=2,
            )
        )

    def close(self) -> None:
        """Stop every process the soak started (each in its own process group): the chaos first,
        so that it restarts nothing behind the stop, then the functions and the emulators."""
        self.closing = True
        self.stop.set()
        self.topology.stop_event.set()
        if self.sender is not None:
            self.sender.close()
        recovering = self._recovering
        if recovering is not None and recovering.poll() is None:
            signal_group(recovering.pid, signal.SIGKILL)
        if self.chaos is not None:
            self.chaos.stop.set()
        for attempt in range(3):
            if self.chaos_thread is not None and self.chaos_thread.is_alive():
                self.chaos_thread.join(STOP_JOIN_S)
            if self.chaos is not None:
                with contextlib.suppress(Exception):
                    self.chaos.resume_all()  # a paused group is continued, then stopped
            self.topology.supervisor.stop_all()
            alive = [c.name for c in self.topology.supervisor.children if c.proc.poll() is None]
            if not alive and not (self.chaos_thread is not None and self.chaos_thread.is_alive()):
                break
            self.log(f"stop {attempt + 1}: still running or restarting: {alive or ['the chaos']}")
        self.topology.close_proxies()
        if self.topology._publisher is not None:
            with contextlib.suppress(Exception):
                self.topology._publisher.stop()
        self.log(f"{self.stop_signal or 'stop'}: every process the soak started is stopped")
        self.log.close()


def main(argv: list[str] | None = None) -> int:
    soak = Soak(parse_args(argv))

    def interrupted(signum: int, frame: object) -> None:
        # Records the stop and interrupts the main thread, once; takes no lock (see Soak.stop_signal).
        # A second signal (make forwards the one it got too), or one while stopping, changes nothing.
        if soak.stop_signal is not None or soak.closing:
            return
        soak.stop_signal = soak.topology.stop_signal = signal.Signals(signum).name
        raise KeyboardInterrupt

    previous: dict[int, Callable[..., Any] | int | None] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, interrupted)
    try:
        return soak.run()
    except KeyboardInterrupt:
        print(f"soak: interrupted ({soak.stop_signal or 'SIGINT'}); stopping every process", flush=True)
        return 2
    finally:
        soak.close()
