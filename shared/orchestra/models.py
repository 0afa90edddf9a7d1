"""Domain model: runs, findings, actions and the records kept beside them.

These models are the shape of what the state store keeps and what ``--format json`` prints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from .inputs import Origin


def _as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def format_timestamp(value: dt.datetime) -> str:
    """Fixed-width UTC ISO 8601, so stored timestamps sort correctly as strings."""
    return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Every timestamp in stored documents: timezone-aware UTC, serialized fixed-width.
Timestamp = Annotated[
    dt.datetime, AfterValidator(_as_utc), PlainSerializer(format_timestamp, return_type=str, when_used="json")
]


class Strict(BaseModel):
    # Schemas are built on first use, not at import: a function's cold start builds only the
    # models its first request validates.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class TriggerKind(StrEnum):
    manual = "manual"
    scheduled = "scheduled"
    event = "event"
    alert = "alert"
    webhook = "webhook"
    continuous = "continuous"
    hook = "hook"


class Mode(StrEnum):
    analyze = "analyze"
    apply = "apply"


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    awaiting_approval = "awaiting_approval"
    awaiting_verification = "awaiting_verification"
    """Applied, but verification could not tell yet: re-checked until the environment's
    verification window ends (see :class:`VerificationRecord`)."""
    rolled_back = "rolled_back"


TERMINAL_STATUSES = frozenset(
    {RunStatus.succeeded, RunStatus.failed, RunStatus.skipped, RunStatus.rolled_back}
)


class Severity(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}


class Risk(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


RISK_ORDER = {Risk.low: 1, Risk.medium: 2, Risk.high: 3}


class ActionStatus(StrEnum):
    proposed = "proposed"
    applied = "applied"
    skipped = "skipped"
    awaiting_approval = "awaiting_approval"
    rolled_back = "rolled_back"
    failed = "failed"


class VerificationOutcome(StrEnum):
    """What one check of an applied change showed."""

    passed = "passed"
    failed = "failed"
    inconclusive = "inconclusive"
    """Nothing says the change is worse, but nothing proves it helped either (no samples yet)."""


class Finding(Strict):
    id: str
    severity: Severity
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class Action(Strict):
    id: str
    description: str
    risk: Risk
    status: ActionStatus = ActionStatus.proposed
    kind: str = Field(description="handler name inside the automation, e.g. 'set-concurrency'")
    params: dict[str, Any] = Field(default_factory=dict)
    approved_by: str | None = Field(
        default=None,
        description="a person other than the requester already approved this change (e.g. a deployment)",
    )
    # Written before apply so a crashed run can be rolled back by another process.
    rollback: dict[str, Any] | None = None
    applied_at: Timestamp | None = None
    verified: bool | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None


VerificationDecider = Literal["checks", "policy:rollback", "policy:accept"]


class VerificationRecord(BaseModel):
    """``action.result["verification"]``: the automation's evidence (its own keys, e.g. ``checks``)
    plus what the runner made of it."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    outcome: VerificationOutcome
    decided_by: VerificationDecider | None = Field(
        None,
        description="checks: the checks passed or failed; policy:rollback / policy:accept: still "
        "inconclusive when the window ended, the environment's policy decided; None: pending",
    )
    pending: bool = Field(False, description="inconclusive inside the window: re-checked later")
    window_ends_at: Timestamp | None = Field(None, description="end of the verification window")
    checked_at: Timestamp
    attempts: int = Field(1, ge=1, description="how many times the change was checked")

    @classmethod
    def of(cls, action: Action) -> VerificationRecord | None:
        """The action's record, or None when it has none (or one stored before outcomes)."""
        raw = action.result.get("verification")
        if not isinstance(raw, dict) or "outcome" not in raw or "checked_at" not in raw:
            return None
        return cls.model_validate(raw)


class Lease(Strict):
    owner: str
    expires_at: Timestamp
    heartbeat_at: Timestamp


class RunError(Strict):
    type: str
    message: str
    transient: bool = False
    bad_input: bool = Field(False, description="the trigger's input was rejected (CLI exit code 2)")


class DecisionKind(StrEnum):
    """What a person decided about something awaiting approval."""

    approve = "approve"
    reject = "reject"
    cancel = "cancel"
    """Withdraw something already approved but not yet under way (deployments)."""


class Decision(Strict):
    """A person's decision on something that awaited one: a run's waiting actions or a plugin's
    own subject (a deployment). Runs and deployments record this same shape."""

    subject_kind: str = Field(
        pattern=r"^[a-z][a-z0-9_-]{0,62}$", description="what was decided on: run, deployment, …"
    )
    subject_id: str = Field(min_length=1)
    decision: DecisionKind
    by: str = Field(min_length=1, description="the identity that decided")
    at: Timestamp
    comment: str | None = Field(None, description="the approver's comment or the reason given")

    def describe(self) -> str:
        past = {DecisionKind.approve: "approved", DecisionKind.reject: "rejected"}
        text = f"{past.get(self.decision, 'cancelled')} by {self.by}"
        return text + (f": {self.comment}" if self.comment else "")


class RunPhase(StrEnum):
    analyzing = "analyzing"
    applying = "applying"
    verifying = "verifying"
    done = "done"


class Run(Strict):
    id: str
    task: str
    trigger_kind: TriggerKind
    trigger_id: str
    environment: str
    mode: Mode
    automation_level: int = Field(ge=0, le=3)
    status: RunStatus = RunStatus.queued
    phase: RunPhase = RunPhase.analyzing
    attempts: int = 0
    requested_by: str = "unknown"
    origin: Origin = Field(
        Origin.remote, description="local triggers may name local files; remote ones may not"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    updated_at: Timestamp
    findings: list[Finding] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    error: RunError | None = None
    reason: str | None = Field(default=None, description="why skipped / awaiting / rolled back")
    lease: Lease | None = None
    decision: Decision | None = Field(None, description="the approval or rejection of its waiting actions")
    approval_expires_at: Timestamp | None = None
    source_event: str | None = Field(default=None, description="id of the event that caused the run")
    summary: dict[str, Any] = Field(default_factory=dict, description="automation-specific report")
    expires_at: Timestamp | None = Field(default=None, description="TTL: deleted by retention")

    @model_validator(mode="before")
    @classmethod
    def _stored_approval(cls, data: Any) -> Any:
        """Runs stored before decisions were recorded as :class:`Decision` kept ``approval``
        (``run_id``, ``approver``, ``approved_at``, ``comment``): read it as the approval it was."""
        if not isinstance(data, dict) or "approval" not in data:
            return data
        data = dict(data)
        old = data.pop("approval")
        if isinstance(old, dict) and data.get("decision") is None:
            data["decision"] = {
                "subject_kind": "run",
                "subject_id": old.get("run_id", data.get("id")),
                "decision": DecisionKind.approve.value,
                "by": old.get("approver"),
                "at": old.get("approved_at"),
                "comment": old.get("comment"),
            }
        return data


def run_id_for(task: str, trigger_id: str) -> str:
    """Deterministic, Firestore-safe run id: the same trigger always maps to the same run."""
    digest = hashlib.sha256(f"{task}\x00{trigger_id}".encode()).hexdigest()[:20]
    return f"{task}-{digest}"


def safe_doc_id(raw: str) -> str:
    """Make any string usable as a Firestore document id (no '/', not '.', '..' or '__x__').

    Readable ids stay readable; anything else becomes a stable hash.
    """
    cleaned = "".join(c if c.isalnum() or c in "-_.:@" else "_" for c in raw)
    if (
        cleaned == raw
        and raw not in {".", ".."}
        and not (raw.startswith("__") and raw.endswith("__"))
        and 0 < len(raw.encode()) <= 200
    ):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return f"{cleaned[:80].strip('.') or 'id'}~{digest}"


class EventRecord(Strict):
    """An event as received: kept for tracing, dedupe and for rejected/ignored input."""

    id: str
    source: str = Field(description="scheduled, alerts, controller, webhooks, dead_letter, cli, ...")
    event_id: str = Field(description="message id / delivery id / incident id + state")
    kind: str
    status: str = Field(description="accepted, rejected, ignored, duplicate")
    reason: str | None = None
    run_ids: list[str] = Field(default_factory=list)
    received_at: Timestamp
    payload: dict[str, Any] = Field(default_factory=dict)
    expires_at: Timestamp | None = None


class DeadLetter(Strict):
    id: str
    message_id: str
    origin: str = Field(description="subscription or topic the message died on")
    delivery_attempt: int | None = None
    data: str | None = Field(default=None, description="the original message data (decoded text)")
    data_bytes: int | None = Field(default=None, description="size of the original data")
    data_truncated: bool = Field(
        default=False,
        description="only the start of the data is kept (a Firestore document is at most 1 MiB)",
    )
    attributes: dict[str, str] = Field(default_factory=dict)
    received_at: Timestamp
    replayed_run_ids: list[str] = Field(default_factory=list)
    expires_at: Timestamp | None = None
