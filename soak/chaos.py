"""Faults injected while the stream runs: seeded, each one timestamped in the soak's log.

- ``kill``: SIGKILL a function's process group at a random moment, start it again on its port;
- ``kill_after_apply``: wait for the next ``apply`` in the ledger and SIGKILL the process that
  wrote it, between apply and verify (the soak automation's verify delay holds that window open);
- ``pause``: SIGSTOP a function past its lease, then SIGCONT (its runs are taken over meanwhile);
- ``store_restart``: the store cut off while the Firestore emulator is stopped and started again
  with its data;
- ``store_pause``: SIGSTOP the Firestore emulator for a few seconds (every call hangs);
- ``delay_push``: push deliveries to a function held back by its proxy.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .topology import PUSHED, SoakTopology

FAULTS = ("kill", "kill_after_apply", "pause", "store_restart", "store_pause", "delay_push")
WEIGHTS = (0.28, 0.2, 0.14, 0.1, 0.12, 0.16)
VICTIMS = ("scheduled", "alerts", "webhooks", "controller", "dead_letter")


@dataclass
class Chaos:
    topology: SoakTopology
    ledger: Path
    work: Path
    seed: int
    every_s: float
    lease_s: float
    log: Callable[[str], None]
    injected: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        rng = random.Random(f"chaos:{self.seed}")
        number = 0
        round_: list[str] = []
        while not self.stop.wait(self.every_s * rng.uniform(0.5, 1.5)):
            number += 1
            if not round_:
                # Every kind of fault in each round, in a seeded order, plus weighted extras.
                round_ = [*FAULTS, *rng.choices(FAULTS, WEIGHTS, k=len(FAULTS))]
                rng.shuffle(round_)
            fault = round_.pop()
            victim = rng.choice(VICTIMS)
            try:
                self.inject(number, fault, victim, rng)
            except Exception as exc:  # noqa: BLE001 - a fault that could not be injected is reported
                message = f"fault {number} {fault}: could not inject: {type(exc).__name__}: {exc}"
                self.errors.append(message)
                self.log(message)

    def _log(self, number: int, text: str) -> None:
        self.log(f"fault {number} {text}")

    def inject(self, number: int, fault: str, victim: str, rng: random.Random) -> None:
        t = self.topology
        if fault == "kill":
            time.sleep(rng.uniform(0, 1))
            pgid = t.kill(victim)
            self._log(number, f"kill -9 {victim} (group {pgid})")
            time.sleep(rng.uniform(0.2, 2))
            t.restart_function(victim)
            self._log(number, f"restarted {victim}")
        elif fault == "kill_after_apply":
            found = self._next_apply(timeout_s=max(5.0, self.every_s))
            if found is None:
                self._log(number, "kill after apply: no apply seen; nothing killed")
                return
            key, pid = found
            name = self._function_of(pid)
            if name is None:
                self._log(number, f"kill after apply: pid {pid} ({key}) is not a function")
                return
            pgid = t.kill(name)
            self._log(number, f"kill -9 {name} (group {pgid}) right after it applied {key}")
            time.sleep(rng.uniform(0.2, 1))
            t.restart_function(name)
            self._log(number, f"restarted {name}")
        elif fault == "pause":
            hold = self.lease_s + rng.uniform(1, 3)
            pgid = t.pause(victim)
            self._log(number, f"SIGSTOP {victim} (group {pgid}) for {hold:.1f} s (lease {self.lease_s:g} s)")
            self.stop.wait(hold)
            t.resume(victim)
            self._log(number, f"SIGCONT {victim}")
        elif fault == "store_restart":
            self._log(number, "Firestore emulator: store cut, stopping")
            took = t.restart_firestore(self.work / f"export-{number}")
            self._log(number, f"Firestore emulator restarted with its data; store back after {took:.1f} s")
        elif fault == "store_pause":
            hold = rng.uniform(1, 4)
            pgid = t.pause("firestore-emulator")
            self._log(number, f"SIGSTOP Firestore emulator (group {pgid}) for {hold:.1f} s")
            time.sleep(hold)
            t.resume("firestore-emulator")
            self._log(number, "SIGCONT Firestore emulator")
        else:
            target = rng.choice(PUSHED)
            delay, hold = rng.uniform(0.5, 3), rng.uniform(2, 6)
            t.push_proxies[target].delay(delay)
            self._log(number, f"push deliveries to {target} delayed {delay:.1f} s for {hold:.1f} s")
            self.stop.wait(hold)
            t.push_proxies[target].delay(0)
            self._log(number, f"push deliveries to {target} no longer delayed")
        self.injected[fault] += 1

    def _next_apply(self, timeout_s: float) -> tuple[str, int] | None:
        start = self.ledger.stat().st_size if self.ledger.exists() else 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.stop.is_set():
            if self.ledger.exists() and self.ledger.stat().st_size > start:
                with self.ledger.open("rb") as handle:
                    handle.seek(start)
                    for raw in handle.read().splitlines():
                        entry = json.loads(raw)
                        if entry.get("op") == "apply":
                            return str(entry["key"]), int(entry["pid"])
            time.sleep(0.02)
        return None

    def _function_of(self, pid: int) -> str | None:
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return None
        return self.topology.function_pids().get(pgid)

    def resume_all(self) -> None:
        """Nothing is left stopped or slowed when the chaos ends."""
        for child in list(self.topology.supervisor.children):
            if child.proc.poll() is None:
                try:
                    os.killpg(child.pgid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        for proxy in self.topology.push_proxies.values():
            proxy.delay(0)
        if self.topology.firestore_proxy is not None:
            self.topology.firestore_proxy.restore()
