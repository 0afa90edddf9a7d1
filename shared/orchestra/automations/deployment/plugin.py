"""The ``deployment`` automation: move pending deployments of one environment forward.

Each run looks at the run's environment:
1. bookkeeping on the deployment records (never on the service): unapproved requests past their
   TTL expire, newer requests supersede older pending ones, new requests are classified as
   awaiting approval or approved by the environment's policy, approved ones outside the window
   wait for it;
2. for the newest pending deployment that is approved, inside its window, not frozen, whose
   required test suites passed on the revision, whose deployer is configured and healthy and
   whose environment is not locked, it proposes "deploy <id> to <env>". A required suite that
   failed marks the deployment ``blocked`` with the suite named; a finished run that recorded
   suite results starts such a run at once for the deployments waiting for them (:mod:`.gate`).

The runner's gates decide whether that action applies (automation level, protected
environments). Risk is the environment's (production high, staging medium, development low).
Once a person other than the requester approved the deployment, the action carries
``approved_by``: that approval is the four-eyes check a protected environment asks for, so the
gates let it go out in the next window without a second approval.

apply: take the environment lock (a lease), run the deployer, record what it did;
verify: health probes and the error-rate rule, then ``succeeded``; on failure ``failed`` and
the runner calls rollback: the deployer goes back to the last known good revision,
``rolled_back``. A per-environment dependency breaker (``dependency:deployer:<env>``) counts
deployer and verification failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ...automation import (
    Analysis,
    Automation,
    DecisionContext,
    EventContext,
    EventKind,
    EventOutcome,
    GateStatus,
    RunContext,
    Verification,
)
from ...breaker import CircuitBreaker, dependency_breaker_name
from ...errors import IllegalTransition, InputError
from ...models import Action, Finding, Run, Severity, format_timestamp
from .approvals import POLICY_ACTOR, approved_by_someone_else, expired, require_decision
from .gate import blocked_reason, mark_blocked, suite_gate
from .requests import APPROVED, check_settings, reconcile, request_deployment
from .settings import DeploymentSettings, EnvironmentPolicy
from .state import (
    DEPLOYMENT,
    PENDING,
    Deployment,
    DeploymentState,
    get_deployment,
    list_deployments,
    pending_deployments,
    transition,
    update_fields,
)
from .windows import window_status

if TYPE_CHECKING:
    import datetime as dt

    import click

    from ...approvals import Decided, DecisionRequest
    from ...config import Config

S = DeploymentState
WINDOW_GATE = "deployment window"


class DeploymentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment: str | None = None
    revision: str | None = None
    ref: str | None = None
    repository: str = ""


def lock_name(environment: str) -> str:
    return f"deploy:{environment}"


def lock_owner(run: Run) -> str:
    # The run id, not the process: whoever recovers the run may release the lock.
    return f"run:{run.id}"


def known_good(deployment: Deployment) -> dict[str, Any]:
    details = {k: v for k, v in deployment.deployed.items() if k not in ("commands", "details")}
    extra = deployment.deployed.get("details", {})
    extra = {k: v for k, v in extra.items() if k != "commands"} if isinstance(extra, dict) else {}
    return {
        **extra,
        **details,
        "revision": deployment.revision,
        "ref": deployment.ref,
        "deployment_id": deployment.id,
    }


def last_known_good(store: Any, environment: str, exclude: str | None = None) -> dict[str, Any] | None:
    for deployment in list_deployments(store, environment=environment, state=S.succeeded, limit=5):
        if deployment.id != exclude:
            return known_good(deployment)
    return None


def _compact(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id,
        "state": d.state,
        "revision": d.revision,
        "ref": d.ref,
        "requested_by": d.requested_by,
        "approved_by": d.approved_by,
        "created_at": format_timestamp(d.created_at),
        "updated_at": format_timestamp(d.updated_at),
    }


class DeploymentAutomation(Automation):
    name = "deployment"
    description = "gated, windowed, verified deployments with automatic rollback"
    Settings = DeploymentSettings
    Params = DeploymentParams
    handles = frozenset({EventKind.push, EventKind.run_finished})
    approvable = (DEPLOYMENT,)

    @classmethod
    def decide(cls, subject_id: str, request: DecisionRequest, ctx: DecisionContext) -> Decided | None:
        """`orchestra approve|reject DEP_ID` and `POST /approvals/DEP_ID` decide deployments."""
        from .approvals import decided

        return decided(ctx.store, ctx.clock, None, subject_id, request, config=ctx.config)

    @classmethod
    def handle_event(cls, kind: EventKind, event: BaseModel, ctx: EventContext) -> EventOutcome:
        """A verified GitHub push -> a deployment request for the environment its branch maps to;
        a finished run that recorded suite results -> the deployments waiting for them released
        or blocked (:mod:`.gate`)."""
        if kind == EventKind.run_finished:
            from .gate import handle_run_finished

            return handle_run_finished(cls.name, event, ctx)  # type: ignore[arg-type]
        from .push import handle_push

        if kind != EventKind.push:
            return EventOutcome(status="ignored", reason=f"{cls.name} does not handle {kind} events")
        return handle_push(cls.name, event, ctx)  # type: ignore[arg-type]

    @classmethod
    def environment_gates(cls, config: Config, environment: str, now: dt.datetime) -> list[GateStatus]:
        """The environment's deployment window at ``now`` (freezes included) and its next
        opening, from the settings in effect: what the console's deployments page shows."""
        policy = config.settings_for(cls.name, DeploymentSettings).policy(environment)
        status = window_status(policy, now)
        return [
            GateStatus(name=WINDOW_GATE, open=status.open, reason=status.reason, next_open=status.next_open)
        ]

    @classmethod
    def cli(cls) -> click.Command:
        """`orchestra deployments …`."""
        from .cli import deployments_group

        return deployments_group

    # Injection points (tests, or a caller with its own clients).
    run_client: Any = None
    monitoring_client: Any = None
    timer: Callable[[], float] = staticmethod(time.perf_counter)

    # ------------------------------------------------------------------ helpers
    def deployer(self, policy: EnvironmentPolicy, environment: str) -> Any:
        from .deployers import build_deployer

        if policy.deployer is None:
            raise InputError(
                f"no deployer configured for {environment}",
                where=f"automations.deployment.settings.environments.{environment}.deployer",
            )
        return build_deployer(policy.deployer, run_client=self.run_client)

    def breaker(self, ctx: RunContext, environment: str) -> CircuitBreaker:
        return CircuitBreaker(
            ctx.store,
            dependency_breaker_name(f"deployer:{environment}"),
            ctx.config.runner.breaker,
            ctx.clock,
        )

    def _deployment(self, ctx: RunContext, action: Action) -> Deployment:
        return get_deployment(ctx.store, action.params["deployment_id"])

    # ------------------------------------------------------------------ analyze
    def analyze(self, ctx: RunContext) -> Analysis:
        settings: DeploymentSettings = ctx.settings
        params: DeploymentParams = ctx.params
        check_settings(ctx.config, settings)
        env = ctx.run.environment
        policy = settings.policy(env)
        now = ctx.clock.now()
        findings: list[Finding] = []
        actions: list[Action] = []

        if params.revision:
            requested = request_deployment(
                ctx.store,
                ctx.clock,
                ctx.ids,
                environment=env,
                ref=params.ref,
                revision=params.revision,
                repository=params.repository,
                requested_by=ctx.run.requested_by,
                source_event=f"run:{ctx.run.id}",
            )
            findings.append(
                Finding(
                    id=f"deployment.requested.{requested.id}",
                    severity=Severity.info,
                    summary=f"requested deployment {requested.id} of {requested.revision[:12]} to {env}",
                )
            )
        if params.deployment:
            wanted = get_deployment(ctx.store, params.deployment)
            if wanted.environment != env:
                raise InputError(
                    f"deployment {wanted.id} targets {wanted.environment}, not {env}; "
                    f"run with --environment {wanted.environment}",
                    where="params.deployment",
                )

        pending: list[Deployment] = []
        for dep in pending_deployments(ctx.store, env):
            if dep.state in (S.requested, S.awaiting_approval) and expired(dep, settings, now):
                transition(
                    ctx.store,
                    ctx.clock,
                    dep,
                    S.expired,
                    actor=POLICY_ACTOR,
                    reason=f"not approved within {policy.approval_ttl_hours:g}h",
                )
                findings.append(
                    Finding(
                        id=f"deployment.expired.{dep.id}",
                        severity=Severity.low,
                        summary=f"deployment {dep.id} ({dep.revision[:12]}) expired without approval",
                    )
                )
            else:
                pending.append(dep)
        candidate: Deployment | None = None
        if pending:
            waiting = [d for d in pending if d.state not in APPROVED]
            if waiting:
                # Classified first, so a newer deployment approved by policy can replace older ones.
                require_decision(ctx.store, ctx.clock, waiting[-1], settings)
            for old, newer in reconcile(ctx.store, ctx.clock, env):
                findings.append(
                    Finding(
                        id=f"deployment.superseded.{old.id}",
                        severity=Severity.info,
                        summary=f"deployment {old.id} ({old.revision[:12]}) superseded by {newer.id}",
                    )
                )
            pending = pending_deployments(ctx.store, env)
            approved = [d for d in pending if d.state in APPROVED]
            # Approved deployments go out first, oldest first; newer ones wait for their approval.
            if approved:
                candidate = approved[0]
            elif pending:
                candidate = require_decision(ctx.store, ctx.clock, pending[-1], settings)
        window = window_status(policy, now)
        summary: dict[str, Any] = {"environment": env, "window": window.as_dict()}
        if policy.deployer is not None and not policy.deployer.url and policy.deployer.type == "command":
            findings.append(
                Finding(
                    id=f"deployment.no-health-check.{env}",
                    severity=Severity.low,
                    summary=f"deployments to {env} are not health-checked: the command deployer has no url "
                    f"(automations.deployment.settings.environments.{env}.deployer.url)",
                )
            )
        if policy.deployer is None:
            findings.append(
                Finding(
                    id=f"deployment.no-deployer.{env}",
                    severity=Severity.info,
                    summary=f"no deployer configured for {env}: requests are recorded but wait "
                    f"(automations.deployment.settings.environments.{env}.deployer)",
                )
            )
        if candidate is None:
            summary["note"] = f"no pending deployment for {env}"
        else:
            summary["candidate"] = candidate.id
            blocked = self._blockers(ctx, settings, policy, candidate, window, findings)
            candidate = get_deployment(ctx.store, candidate.id)
            if blocked:
                summary["blocked"] = blocked
            else:
                actions.append(self._action(ctx, settings, candidate))
        summary["pending"] = [_compact(d) for d in pending_deployments(ctx.store, env)]
        summary["recent"] = [_compact(d) for d in list_deployments(ctx.store, environment=env, limit=10)]
        if policy.deployer is None:
            summary["deployer"] = None
        else:
            summary["deployer"] = policy.deployer.type
        return Analysis(findings=findings, actions=actions, summary=summary)

    def _blockers(
        self,
        ctx: RunContext,
        settings: DeploymentSettings,
        policy: EnvironmentPolicy,
        dep: Deployment,
        window: Any,
        findings: list[Finding],
    ) -> str | None:
        env = dep.environment
        now = ctx.clock.now()

        def block(kind: str, severity: Severity, summary: str, **evidence: Any) -> str:
            findings.append(
                Finding(
                    id=f"deployment.{kind}.{dep.id}", severity=severity, summary=summary, evidence=evidence
                )
            )
            return summary

        if dep.state == S.awaiting_approval:
            return block(
                "awaiting-approval",
                Severity.info,
                f"deployment {dep.id} ({dep.revision[:12]}) to {env} awaits approval by someone other than "
                f"{dep.requested_by}: orchestra deployments approve {dep.id}",
            )
        if not window.open:
            if dep.state == S.approved:
                transition(
                    ctx.store, ctx.clock, dep, S.waiting_for_window, actor=POLICY_ACTOR, reason=window.reason
                )
            nxt = format_timestamp(window.next_open) if window.next_open else "none within 60 days"
            return block(
                "waiting-for-window",
                Severity.info,
                f"deployment {dep.id} to {env} waits: {window.reason}; next opening {nxt}",
                next_open=nxt,
            )
        if policy.deployer is None:
            return f"no deployer configured for {env}"
        failed, missing = suite_gate(ctx.store, policy.required_suites, dep.revision)
        mark_blocked(ctx.store, ctx.clock, dep, blocked_reason(dep.revision, failed))
        if failed:
            return block(
                "tests-failed",
                Severity.high,
                f"deployment {dep.id} of {dep.revision[:12]} blocked: required suite failed: {'; '.join(failed)}",
                failed=failed,
            )
        if missing:
            return block(
                "tests-pending",
                Severity.info,
                f"deployment {dep.id} waits for required suite result(s) on {dep.revision[:12]}: "
                f"{', '.join(missing)}",
                missing=missing,
            )
        lock = ctx.store.get_lock(lock_name(env))
        if lock is not None and lock.expires_at > now and lock.owner != lock_owner(ctx.run):
            return block(
                "locked",
                Severity.info,
                f"{env} is being deployed by {lock.owner} (lock until {format_timestamp(lock.expires_at)})",
            )
        # Asked, not read: an open breaker past its open_seconds lets this deployment go out as
        # the probe (apply takes it), which closes the breaker on success.
        breaker = self.breaker(ctx, env)
        permit = breaker.peek(lock_owner(ctx.run))
        if not permit.allowed:
            return block(
                "deployer-breaker-open",
                Severity.high,
                f"deployer for {env} is failing; deployment {dep.id} waits: {permit.reason}",
                breaker=breaker.name,
            )
        return None

    def _action(self, ctx: RunContext, settings: DeploymentSettings, dep: Deployment) -> Action:
        env_risk = settings.risk(dep.environment)
        approved_by_person = approved_by_someone_else(dep, ctx.config)
        what = f"deploy {dep.revision[:12]}" + (f" ({dep.ref})" if dep.ref else "") + f" to {dep.environment}"
        if approved_by_person:
            what += f", approved by {dep.approved_by}"
        return Action(
            id=f"deploy-{dep.id}",
            description=f"{what} [{dep.id}]",
            risk=env_risk,
            approved_by=dep.approved_by if approved_by_person else None,
            kind="deploy",
            params={
                "deployment_id": dep.id,
                "environment": dep.environment,
                "revision": dep.revision,
                "ref": dep.ref,
                "environment_risk": str(env_risk),
                "approved_by": dep.approved_by,
                # Whoever approves the run must not be one of them either.
                "requester_identities": dep.requesters,
            },
        )

    # ------------------------------------------------------------------ actions
    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        dep = self._deployment(ctx, action)
        lkg = last_known_good(ctx.store, dep.environment, exclude=dep.id)
        if lkg is None:
            policy = ctx.settings.policy(dep.environment)
            if policy.deployer is not None:
                lkg = self.deployer(policy, dep.environment).current()
        return {"deployment_id": dep.id, "last_known_good": lkg}

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from .deployers import DeployRequest

        settings: DeploymentSettings = ctx.settings
        dep = self._deployment(ctx, action)
        env = dep.environment
        policy = settings.policy(env)
        if dep.state not in (S.approved, S.waiting_for_window):
            raise IllegalTransition(
                f"deployment {dep.id} is {dep.state}; only approved deployments are deployed",
                where="deployment",
            )
        now = ctx.clock.now()
        window = window_status(policy, now)
        if not window.open:
            # An approval of the run can arrive long after the analysis: the window still rules.
            if dep.state == S.approved:
                transition(
                    ctx.store, ctx.clock, dep, S.waiting_for_window, actor=POLICY_ACTOR, reason=window.reason
                )
            return {"deployment_id": dep.id, "deferred": window.reason}
        breaker = self.breaker(ctx, env)
        permit = breaker.before_call(lock_owner(ctx.run))
        if not permit.allowed:
            return {"deployment_id": dep.id, "deferred": permit.reason}
        owner = lock_owner(ctx.run)
        if not ctx.store.acquire_lock(lock_name(env), owner, now=now, ttl_seconds=policy.lock_seconds):
            breaker.release_probe(owner, permit)  # nothing was attempted: the next run probes
            held = ctx.store.get_lock(lock_name(env))
            holder = f"{held.owner} until {format_timestamp(held.expires_at)}" if held else "another run"
            return {"deployment_id": dep.id, "deferred": f"{env} is locked by {holder}"}
        deployer = self.deployer(policy, env)
        lkg = (action.rollback or {}).get("last_known_good")
        dep = transition(
            ctx.store,
            ctx.clock,
            dep,
            S.deploying,
            actor=owner,
            reason=f"deploying with {deployer.describe()}",
            changes={"run_id": ctx.run.id, "last_known_good": lkg},
        )
        ctx.heartbeat()
        try:
            result = deployer.deploy(
                DeployRequest(
                    deployment_id=dep.id,
                    environment=env,
                    revision=dep.revision,
                    ref=dep.ref,
                    repository=dep.repository,
                    previous=lkg,
                )
            )
        except Exception as exc:
            if isinstance(exc, InputError):
                breaker.release_probe(owner, permit)  # the request's fault, not the deployer's
            else:
                breaker.record_failure(f"deploy {dep.id}: {type(exc).__name__}: {exc}", permit)
            transition(
                ctx.store, ctx.clock, dep, S.failed, actor=owner, reason=f"deployer failed: {exc}"[:1000]
            )
            raise
        ctx.heartbeat()
        deployed = result.model_dump(mode="json")
        dep = transition(
            ctx.store,
            ctx.clock,
            dep,
            S.verifying,
            actor=owner,
            reason=f"deployed {result.revision[:12]}" + (f" at {result.url}" if result.url else ""),
            changes={"deployed": deployed},
        )
        return {
            "deployment_id": dep.id,
            "url": result.url,
            "deployed": {k: v for k, v in deployed.items() if k != "details"},
        }

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        settings: DeploymentSettings = ctx.settings
        if action.result.get("deferred"):
            return Verification(ok=True, evidence={"deferred": action.result["deferred"]})
        dep = self._deployment(ctx, action)
        owner = lock_owner(ctx.run)
        if dep.state == S.succeeded:
            return Verification(ok=True, evidence=dep.verification)
        if dep.state in (S.failed, S.rolled_back):
            return Verification(ok=False, evidence={"state": dep.state, **dep.verification})
        if dep.state == S.deploying:
            # The previous owner died between deploy and verify: check what is serving now.
            dep = transition(
                ctx.store,
                ctx.clock,
                dep,
                S.verifying,
                actor=owner,
                reason="run recovered after its owner died; verifying what is deployed",
            )
        if dep.state != S.verifying:
            raise IllegalTransition(
                f"deployment {dep.id} is {dep.state}; nothing to verify", where="deployment"
            )
        policy = settings.policy(dep.environment)
        evidence, reasons = self._checks(ctx, policy, dep)
        ok = not reasons
        breaker = self.breaker(ctx, dep.environment)
        if ok:
            transition(
                ctx.store,
                ctx.clock,
                dep,
                S.succeeded,
                actor=owner,
                reason="verified",
                changes={"verification": evidence},
            )
            ctx.store.release_lock(lock_name(dep.environment), owner)
            breaker.record_success()
        else:
            transition(
                ctx.store,
                ctx.clock,
                dep,
                S.failed,
                actor=owner,
                reason=("verification failed: " + "; ".join(reasons))[:1000],
                changes={"verification": evidence},
            )
            breaker.record_failure(f"verification of {dep.id} failed: {'; '.join(reasons)}")
        return Verification(ok=ok, evidence=evidence)

    def _checks(
        self, ctx: RunContext, policy: EnvironmentPolicy, dep: Deployment
    ) -> tuple[dict[str, Any], list[str]]:
        from .verification import error_rate_check, health_check

        evidence: dict[str, Any] = {}
        reasons: list[str] = []
        url = dep.deployed.get("url")
        if not url and policy.deployer is not None:
            url = policy.deployer.url
        if url:
            health = health_check(
                url,
                policy.verification,
                revision=dep.revision,
                clock=ctx.clock,
                heartbeat=ctx.heartbeat,
                timer=self.timer,
            )
            evidence["health"] = health.as_dict()
            reasons.extend(health.reasons)
        else:
            evidence["health"] = {"skipped": "no URL: configure the deployer's url to probe the service"}
        rule = policy.verification.error_rate
        if rule is not None:
            cloud_run = (
                policy.deployer
                if policy.deployer is not None and policy.deployer.type == "cloud_run"
                else None
            )
            report = error_rate_check(
                rule,
                service=cloud_run.service if cloud_run else dep.environment,
                now=ctx.clock.now(),
                project=cloud_run.project if cloud_run else None,
                region=cloud_run.region if cloud_run else None,
                monitoring_client=self.monitoring_client,
            )
            evidence["error_rate"] = report.as_dict()
            if not report.ok:
                reasons.append(report.reason)
        return evidence, reasons

    def rollback(self, ctx: RunContext, action: Action) -> None:
        from .deployers import DeployerError, RollbackRequest

        settings: DeploymentSettings = ctx.settings
        dep = self._deployment(ctx, action)
        owner = lock_owner(ctx.run)
        env = dep.environment
        if dep.state in PENDING or dep.state in (S.succeeded, S.rolled_back):
            # Never started (nothing to undo), or already settled: safe to call twice.
            ctx.store.release_lock(lock_name(env), owner)
            return
        try:
            if dep.state in (S.deploying, S.verifying):
                dep = transition(
                    ctx.store,
                    ctx.clock,
                    dep,
                    S.failed,
                    actor=owner,
                    reason="deploy or verification did not complete",
                )
            target = dep.last_known_good or (action.rollback or {}).get("last_known_good")
            if not target:
                raise DeployerError(
                    f"no last known good revision of {env} to roll back to; {env} is left on the failed "
                    f"revision {dep.revision} (deployment {dep.id})"
                )
            policy = settings.policy(env)
            result = self.deployer(policy, env).rollback(
                RollbackRequest(
                    deployment_id=dep.id,
                    environment=env,
                    failed_revision=dep.revision,
                    target=target,
                    ref=dep.ref,
                    repository=dep.repository,
                )
            )
            transition(
                ctx.store,
                ctx.clock,
                dep,
                S.rolled_back,
                actor=owner,
                reason=f"rolled back to {str(target.get('revision'))[:12]} (last known good)",
                changes={
                    "rolled_back_to": {**target, "result": result.model_dump(mode="json").get("details", {})}
                },
            )
        except Exception as exc:
            dep = get_deployment(ctx.store, dep.id)
            if dep.state == S.failed:
                update_fields(
                    ctx.store,
                    ctx.clock,
                    dep,
                    verification={**dep.verification, "rollback_error": str(exc)[:1000]},
                )
            raise
        finally:
            ctx.store.release_lock(lock_name(env), owner)

    # ------------------------------------------------------------------ output
    def render(self, run: Run, console: Any) -> None:
        from rich.markup import escape
        from rich.table import Table

        summary = run.summary
        window = summary.get("window") or {}
        if window:
            state = "[green]open[/]" if window.get("open") else "[yellow]closed[/]"
            line = f"window {state}: {escape(str(window.get('reason', '')))}"
            if window.get("next_open") and not window.get("open"):
                line += f"; next opening {window['next_open']}"
            console.print(line, highlight=False)
        for title, key in (("Pending deployments", "pending"), ("Recent deployments", "recent")):
            rows = summary.get(key) or []
            if not rows:
                continue
            table = Table(title=title, title_justify="left")
            for col in ("id", "state", "revision", "ref", "requested by", "approved by", "updated"):
                table.add_column(col)
            for d in rows:
                table.add_row(
                    d["id"],
                    d["state"],
                    escape(d["revision"][:12]),
                    escape(d.get("ref") or "-"),
                    escape(d.get("requested_by") or "-"),
                    escape(d.get("approved_by") or "-"),
                    d.get("updated_at", "")[:19],
                )
            console.print(table)
        if summary.get("note"):
            console.print(f"[dim]{escape(summary['note'])}[/]")
