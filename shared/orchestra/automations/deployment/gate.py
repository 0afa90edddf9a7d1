"""The suite gate: deployments wait for their environment's ``required_suites`` to pass on their
revision, and a finished run that recorded suite results releases or blocks them at once.

The runner announces every finished run (:attr:`~orchestra.automation.EventKind.run_finished`);
the deployment automation asks the store which suite results that run recorded
(:mod:`orchestra.toolkit.suite_results`, keyed by run id — whichever automation wrote them). For
each pending deployment of such a revision whose environment requires one of those suites:

- a required suite failed (or timed out, or could not run): the deployment is marked ``blocked``
  with the suite and its reason, and stays pending (a later passing run of the suite on the same
  revision clears it);
- every required suite has a result: a deployment run of its environment is submitted (apply
  mode, the environment's automation level), which takes the deployment forward through its
  usual gates (approval, window, lock, breaker) or records why it is blocked;
- results still missing: it keeps waiting (the run names what is missing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...automation import EventContext, EventOutcome, RunFinished
from ...errors import IllegalTransition
from ...models import Mode, TriggerKind
from .approvals import POLICY_ACTOR
from .requests import deployment_settings
from .state import Deployment, find_deployment, pending_deployments, update_fields

if TYPE_CHECKING:
    from ...clock import Clock
    from ...store.base import StateStore


def suite_gate(store: StateStore, suites: list[str], revision: str) -> tuple[list[str], list[str]]:
    """(failed, missing) required suites for ``revision``: failed ones as ``name (status: reason)``."""
    if not suites:
        return [], []
    from ...toolkit.suite_results import latest_for_revision

    failed, missing = [], []
    for suite in suites:
        result = latest_for_revision(store, suite, revision)
        if result is None:
            missing.append(suite)
        elif result.status != "passed":
            failed.append(f"{suite} ({result.status}: {result.reason})")
    return failed, missing


def blocked_reason(revision: str, failed: list[str]) -> str | None:
    if not failed:
        return None
    return f"required suite failed on {revision[:12]}: {'; '.join(failed)}"[:1000]


def mark_blocked(store: StateStore, clock: Clock, deployment: Deployment, reason: str | None) -> Deployment:
    """Record (or clear, with None) why ``deployment`` cannot go out; a deployment moved meanwhile
    by another process is left as that process wrote it."""
    if deployment.blocked == reason:
        return deployment
    current = find_deployment(store, deployment.id) or deployment
    if current.blocked == reason:
        return current
    try:
        return update_fields(store, clock, current, blocked=reason)
    except IllegalTransition:
        return find_deployment(store, deployment.id) or current


def handle_run_finished(task: str, event: RunFinished, ctx: EventContext) -> EventOutcome:
    from ...runner import RunRequest
    from ...toolkit.suite_results import results_for_run

    settings = deployment_settings(ctx.config)
    required = {env: set(p.required_suites) for env, p in settings.environments.items() if p.required_suites}
    if not required:
        # The plugin's orchestra.handles entry declares this precondition
        # ("deployment.run_finished if settings.environments.*.required_suites"), so the registry
        # neither imports nor asks the plugin then; the check stays for callers that ask anyway.
        return EventOutcome(status="ignored", reason="no environment requires suites")
    results = results_for_run(ctx.store, event.run_id)
    if not results:
        return EventOutcome(status="ignored", reason=f"run {event.run_id} recorded no suite results")
    ran: dict[str, set[str]] = {}
    for result in results:
        if result.revision:
            ran.setdefault(result.revision, set()).add(result.suite)
    waiting = [
        d
        for d in pending_deployments(ctx.store)
        if d.environment in required and required[d.environment] & ran.get(d.revision, set())
    ]
    if not waiting:
        return EventOutcome(
            status="ignored",
            reason="no pending deployment requires "
            + "; ".join(f"{', '.join(sorted(s))} on {rev[:12]}" for rev, s in sorted(ran.items())),
        )
    verdicts: dict[str, dict[str, Any]] = {}
    ready: set[str] = set()
    for dep in waiting:
        failed, missing = suite_gate(ctx.store, sorted(required[dep.environment]), dep.revision)
        mark_blocked(ctx.store, ctx.clock, dep, blocked_reason(dep.revision, failed))
        if failed:
            verdict = f"blocked: required suite failed: {'; '.join(failed)}"
        elif missing:
            verdict = f"waits for required suite(s) {', '.join(missing)}"
        else:
            verdict = "required suites passed"
        if not missing:
            ready.add(dep.environment)
        verdicts[dep.id] = {"environment": dep.environment, "revision": dep.revision, "suites": verdict}
    requests = [
        RunRequest(
            task=task,
            environment=env,
            mode=Mode.apply,
            trigger_kind=TriggerKind.event,
            trigger_id=f"suites:{event.run_id}:{env}",
            requested_by=POLICY_ACTOR,
            source_event=f"run:{event.run_id}",
        )
        for env in sorted(ready)
    ]
    reason = "; ".join(f"deployment {i} ({v['environment']}) {v['suites']}" for i, v in verdicts.items())
    return EventOutcome(
        status="accepted", reason=reason[:2000], requests=requests, payload={"deployments": verdicts}
    )
