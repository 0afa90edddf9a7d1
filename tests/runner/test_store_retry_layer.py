"""Retries live in one layer: a transient Firestore error inside an analysis is attempted exactly
``runner.retry.attempts`` times in process (the runner's policy), never multiplied by retries of
the adapter underneath. The Firestore adapter runs against the emulator; one collection answers
``UNAVAILABLE``, through whatever retry the adapter hands the client, as the library would."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from orchestra.automation import Analysis, Automation, RunContext
from orchestra.config import Config
from orchestra.errors import TransientError
from orchestra.models import Finding, RunStatus, Severity, TriggerKind
from orchestra.registry import Registry
from orchestra.runner import Runner, RunRequest, run_id_for
from orchestra.store.base import StateStore

pytestmark = pytest.mark.emulator

COLLECTION = "outage_probe"


class StoreReader(Automation):
    name = "store-reader"

    def analyze(self, ctx: RunContext) -> Analysis:
        doc = ctx.store.get(COLLECTION, "doc")
        return Analysis(findings=[Finding(id="read", severity=Severity.info, summary=f"found {doc}")])


class Outage:
    """Counts the RPCs made for one collection's documents; the first ``failures`` fail."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rpcs = 0


def _through_outage(outage: Outage, kwargs: dict[str, Any], answer: Any) -> Any:
    retry = kwargs["retry"]  # no retry argument would mean the library's 60-300 s default

    def rpc() -> Any:
        outage.rpcs += 1
        if outage.rpcs <= outage.failures:
            raise gexc.ServiceUnavailable(f"injected outage (rpc {outage.rpcs})")
        return answer()

    return retry(rpc)()


class _Ref:
    def __init__(self, real: Any, outage: Outage) -> None:
        self._real = real
        self._outage = outage

    def get(self, **kwargs: Any) -> Any:
        return _through_outage(self._outage, kwargs, lambda: self._real.get(timeout=kwargs.get("timeout")))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Api:
    """The generated API client: the adapter reads a document with its unary GetDocument."""

    def __init__(self, real: Any, target: str, outage: Outage) -> None:
        self._real = real
        self._target = target
        self._outage = outage

    def get_document(self, **kwargs: Any) -> Any:
        if f"/documents/{self._target}/" not in kwargs["request"]["name"]:
            return self._real.get_document(**kwargs)
        rest = {k: v for k, v in kwargs.items() if k != "retry"}
        return _through_outage(self._outage, kwargs, lambda: self._real.get_document(**rest))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Collection:
    def __init__(self, real: Any, outage: Outage) -> None:
        self._real = real
        self._outage = outage

    def document(self, doc_id: str) -> _Ref:
        return _Ref(self._real.document(doc_id), self._outage)


class _Client:
    def __init__(self, real: Any, target: str, outage: Outage) -> None:
        self._real = real
        self._target = target
        self._outage = outage

    def collection(self, name: str) -> Any:
        real = self._real.collection(name)
        return _Collection(real, self._outage) if name == self._target else real

    @property
    def _firestore_api(self) -> _Api:
        return _Api(self._real._firestore_api, self._target, self._outage)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def with_outage(store: StateStore, failures: int) -> Outage:
    outage = Outage(failures)
    real = store._client  # type: ignore[attr-defined]
    store._client = _Client(real, store.prefix + COLLECTION, outage)  # type: ignore[attr-defined]
    return outage


def runner(config: Config, store: StateStore, clock: Any) -> Runner:
    registry = Registry({})
    registry.register(StoreReader)
    return Runner(
        config, store, clock=clock, owner="owner-a", registry=registry, heartbeat_in_background=False
    )


def request(trigger: str) -> RunRequest:
    return RunRequest(
        task="store-reader", trigger_kind=TriggerKind.event, trigger_id=trigger, requested_by="alice"
    )


def test_a_transient_store_error_is_retried_by_the_runner_alone(firestore_store, runner_config, clock):
    outage = with_outage(firestore_store, failures=2)
    run = runner(runner_config, firestore_store, clock).submit(request("flaky-read")).run
    assert run.status == RunStatus.succeeded
    assert run.attempts == 3
    assert outage.rpcs == 3  # two failures, one success: no hidden attempts underneath


def test_an_outage_costs_exactly_the_runners_attempts(firestore_store, runner_config, clock):
    attempts = runner_config.runner.retry.attempts
    outage = with_outage(firestore_store, failures=100)
    with pytest.raises(TransientError, match="injected outage"):
        runner(runner_config, firestore_store, clock).submit(request("down"))
    assert outage.rpcs == attempts
    stored = firestore_store.get_run(run_id_for("store-reader", "down"))
    assert stored.status == RunStatus.failed and stored.error.transient and stored.attempts == attempts
