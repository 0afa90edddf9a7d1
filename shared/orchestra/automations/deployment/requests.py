"""Creating deployment requests: from a push (the webhook) or by hand (the CLI, a run).

A push is identified by what it deploys, not by how it arrived: its deployment id derives from
(repository, environment, revision), so a revision already requested for an environment is never
requested again — a redelivery, or a captured push re-sent with a new ``X-GitHub-Delivery``,
finds the existing deployment. Manual requests get a new id each time (or one derived from the
run that made them), so a revision can be deployed again deliberately.

Superseding (:func:`reconcile`): a deployment supersedes a pending one only when it *follows*
it — its ``before`` chains to the pending one's revision through recorded pushes, or its head
commit is newer (requests without a commit time count from when they were made). An older
revision, however it arrives, never supersedes a newer one; it is superseded itself. A deployment
a person approved is never superseded by one that is merely requested: it stays and goes out
first, and the newer one waits for its own approval. Only a newer *approved* deployment that
follows it replaces it, with that reason recorded.

Light on purpose (pydantic and the store port only): the webhook function imports it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...errors import ConfigError, InputError
from .settings import DeploymentSettings
from .state import (
    Deployment,
    DeploymentState,
    Transition,
    find_deployment,
    pending_deployments,
    save_new,
    transition,
)

S = DeploymentState

if TYPE_CHECKING:
    from ...clock import Clock, IdSource
    from ...config import Config
    from ...store.base import StateStore

__all__ = [
    "Deployment",
    "DeploymentState",
    "deployment_settings",
    "environment_for_ref",
    "reconcile",
    "request_deployment",
    "submit_request",
]

BRANCH_PREFIX = "refs/heads/"
_REVISION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._/@+-]{0,254}$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
SUPERSEDER = "automation:deployment"
# How many recorded pushes a ``before`` chain is followed through.
MAX_CHAIN = 200
APPROVED = frozenset({S.approved, S.waiting_for_window})


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not a git ref name (git check-ref-format rules), or None.

    Refs come from webhook payloads: anything git itself would refuse is refused here too, so a
    crafted name never reaches a deployer. Names git accepts (``$``, ``;``, ``(``…) are passed on
    only as data (environment variables, whole arguments).
    """
    if not ref or len(ref) > 255:
        return "empty or longer than 255 characters"
    bad = _REF_FORBIDDEN.search(ref)
    if bad:
        return f"contains {bad.group(0)!r} (control characters, space, ~ ^ : ? * [ \\ are not allowed)"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "empty path component"
    if ".." in ref or "@{" in ref or ref == "@" or ref.endswith("."):
        return "contains '..' or '@{', is '@', or ends with '.'"
    for part in ref.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return f"component {part!r} starts with '.' or ends with '.lock'"
    if ref.startswith(BRANCH_PREFIX) and ref[len(BRANCH_PREFIX) :].startswith("-"):
        return "branch name starts with '-'"
    return None


def check_revision(revision: str) -> str:
    revision = revision.strip()
    if not _REVISION.match(revision) or ".." in revision:
        raise InputError(
            f"{revision[:80]!r} is not a revision; give a commit SHA or tag "
            "(letters, digits and . _ / @ + -, not starting with '-')",
            where="revision",
        )
    return revision


def deployment_settings(config: Config) -> DeploymentSettings:
    """``automations.deployment.settings`` (validated once per configuration, by
    :meth:`Config.settings_for`), checked against the configuration's environments. Raises
    :class:`ConfigError` naming each problem."""
    settings = config.settings_for("deployment", DeploymentSettings)
    check_settings(config, settings)
    return settings


def check_settings(config: Config, settings: DeploymentSettings) -> None:
    """A policy or branch mapping that names an undefined environment is a configuration error:
    a typo must never leave the real environment on a default, approval-free policy."""
    problems = settings.problems(list(config.environments))
    if problems:
        raise ConfigError("automations.deployment.settings", problems)


def environment_for_ref(config: Config, ref: str) -> str | None:
    """The environment a push to ``ref`` deploys to, or None (tags, non-branch refs, unmapped
    branches). Branch deletions are the caller's to detect (``deleted: true``)."""
    if not ref.startswith(BRANCH_PREFIX) or ref_problem(ref):
        return None
    branch = ref[len(BRANCH_PREFIX) :]
    if not branch:
        return None
    settings = deployment_settings(config)
    env = settings.environment_for_branch(branch)
    if env is not None and env not in config.environments:
        if not settings.states_environment_for(branch):
            return None  # a default naming an environment this configuration does not define
        raise ConfigError(
            "automations.deployment.settings.branches",
            [f"{branch}: maps to unknown environment {env!r}; accepted: {', '.join(config.environments)}"],
        )
    return env


def deployment_id_for_event(source_event: str, environment: str) -> str:
    digest = hashlib.sha256(f"{source_event}\x00{environment}".encode()).hexdigest()[:20]
    return f"dep-{digest}"


def deployment_id_for_revision(repository: str, environment: str, revision: str) -> str:
    """The id of the push deployment of ``revision`` to ``environment``: one per revision."""
    digest = hashlib.sha256(f"push\x00{repository}\x00{environment}\x00{revision}".encode()).hexdigest()[:20]
    return f"dep-{digest}"


@dataclass
class Requested:
    """What a request did: the deployment (new, or the existing one for that revision), whether it
    was created, what it superseded and, when it was itself superseded or waits, why."""

    deployment: Deployment
    created: bool
    superseded: list[Deployment] = field(default_factory=list)
    note: str | None = None


def request_deployment(
    store: StateStore,
    clock: Clock,
    ids: IdSource,
    *,
    environment: str,
    ref: str | None,
    revision: str,
    repository: str,
    requested_by: str,
    source_event: str | None,
    requester_identities: list[str] | None = None,
) -> Deployment:
    """Persist a manual (or run-made) deployment request in state ``requested``.

    With ``source_event`` (a run id) the id is derived from it, so the same run requesting twice
    returns the existing deployment. Pending deployments it follows are superseded."""
    return submit_request(
        store,
        clock,
        ids,
        environment=environment,
        ref=ref,
        revision=revision,
        repository=repository,
        requested_by=requested_by,
        source_event=source_event,
        requester_identities=requester_identities,
    ).deployment


def submit_request(
    store: StateStore,
    clock: Clock,
    ids: IdSource,
    *,
    environment: str,
    ref: str | None,
    revision: str,
    repository: str,
    requested_by: str,
    source_event: str | None,
    requester_identities: list[str] | None = None,
    push: bool = False,
    before: str | None = None,
    committed_at: dt.datetime | None = None,
) -> Requested:
    """Persist a deployment in state ``requested`` and reconcile its environment.

    ``push``: the request comes from a GitHub push (``source_event`` is its delivery id). Its id
    derives from the revision, so a revision already requested for the environment returns the
    existing deployment (``created`` False) whatever the delivery id.
    """
    revision = check_revision(revision)
    if before is not None:
        before = check_revision(before)
    if ref is not None:
        problem = ref_problem(ref)
        if problem:
            raise InputError(f"{ref[:120]!r} is not a valid git ref: {problem}", where="ref")
    if not environment:
        raise InputError("environment is empty", where="environment")
    if push:
        dep_id = deployment_id_for_revision(repository, environment, revision)
    elif source_event:
        dep_id = deployment_id_for_event(source_event, environment)
    else:
        dep_id = ids.new_id("dep-")
    now = clock.now()
    deployment = Deployment(
        id=dep_id,
        environment=environment,
        ref=ref,
        revision=revision,
        repository=repository,
        requested_by=requested_by,
        requester_identities=requester_identities or [requested_by],
        source_event=source_event,
        before=before,
        committed_at=committed_at,
        state=DeploymentState.requested,
        created_at=now,
        updated_at=now,
        history=[
            Transition(
                from_state=None,
                to_state=DeploymentState.requested,
                actor=requested_by,
                at=now,
                reason=f"push to {ref}" if push and ref else "manual request",
            )
        ],
    )
    if not save_new(store, deployment):
        existing = find_deployment(store, dep_id)
        if existing is not None:
            return Requested(existing, created=False)
    superseded, pending = _reconcile(store, clock, environment)
    mine = [old for old, _by in superseded if old.id != dep_id]
    note = None
    for old, by in superseded:
        if old.id == dep_id:
            note = f"superseded at once: {by.id} ({by.revision[:12]}) is newer"
            deployment = old
    if note is None:
        gone = {old.id for old, _by in superseded}
        waits = [
            d
            for d in pending
            if d.id != dep_id and d.id not in gone and human_approved(d) and follows(store, deployment, d)
        ]
        if waits:
            note = (
                "waits for approved "
                + ", ".join(f"{d.id} ({d.revision[:12]})" for d in waits)
                + " to go out first"
            )
    return Requested(deployment, created=True, superseded=mine, note=note)


# ----------------------------------------------------------------------------- superseding


def human_approved(deployment: Deployment) -> bool:
    """Approved by a person (not by an environment that needs no approval)."""
    return deployment.state in APPROVED and deployment.approved_by is not None


def ancestry(
    store: StateStore, deployment: Deployment, cache: dict[str, frozenset[str]] | None = None
) -> frozenset[str]:
    """Revisions ``deployment`` is known to follow: its ``before``, that push's ``before``, …
    through the recorded pushes of its repository and environment."""
    if cache is not None and deployment.id in cache:
        return cache[deployment.id]
    found: list[str] = []
    current = deployment.before
    while current and current.strip("0") and current not in found and len(found) < MAX_CHAIN:
        found.append(current)
        previous = find_deployment(
            store, deployment_id_for_revision(deployment.repository, deployment.environment, current)
        )
        current = previous.before if previous is not None else None
    result = frozenset(found)
    if cache is not None:
        cache[deployment.id] = result
    return result


def _moment(deployment: Deployment) -> dt.datetime:
    return deployment.committed_at or deployment.created_at


def follows(
    store: StateStore, newer: Deployment, older: Deployment, cache: dict[str, frozenset[str]] | None = None
) -> bool:
    """Whether ``newer`` comes after ``older`` in the history of what is deployed: the chain of
    ``before`` revisions says so, else its head commit (or request) is strictly newer."""
    if newer.revision == older.revision:
        return False
    if older.revision in ancestry(store, newer, cache):
        return True
    if newer.revision in ancestry(store, older, cache):
        return False
    return _moment(newer) > _moment(older)


def reconcile(store: StateStore, clock: Clock, environment: str) -> list[tuple[Deployment, Deployment]]:
    """Supersede the pending deployments of ``environment`` that a newer pending one follows.

    A deployment approved by a person is superseded only by a newer approved one (else it stays
    and goes out first). Returns (superseded deployment, the one that superseded it) pairs.
    """
    return _reconcile(store, clock, environment)[0]


def _reconcile(
    store: StateStore, clock: Clock, environment: str
) -> tuple[list[tuple[Deployment, Deployment]], list[Deployment]]:
    """:func:`reconcile`, also returning the pending deployments as read before it."""
    pending = pending_deployments(store, environment)
    cache: dict[str, frozenset[str]] = {}
    gone: set[str] = set()
    done: list[tuple[Deployment, Deployment]] = []
    for newer in sorted(pending, key=lambda d: (_moment(d), d.created_at, d.id), reverse=True):
        if newer.id in gone:
            continue
        for older in pending:
            if older.id == newer.id or older.id in gone or not follows(store, newer, older, cache):
                continue
            if human_approved(older) and newer.state not in APPROVED:
                continue
            try:
                moved = transition(
                    store,
                    clock,
                    older,
                    S.superseded,
                    actor=SUPERSEDER,
                    reason=(
                        f"{'approved ' if newer.state in APPROVED else ''}newer request {newer.id} "
                        f"({newer.revision[:12]}) for {environment} follows it"
                    ),
                    changes={"superseded_by": newer.id},
                )
            except InputError:
                # Moved concurrently (started, cancelled, superseded): nothing to supersede.
                continue
            gone.add(older.id)
            done.append((moved, newer))
    return done, pending
