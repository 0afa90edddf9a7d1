"""Creating deployment requests: from a push (the webhook) or by hand (the CLI).

Light on purpose (pydantic and the store port only): the webhook function imports it.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ...config import format_errors
from ...errors import ConfigError, InputError
from .settings import DeploymentSettings
from .state import (
    PENDING,
    Deployment,
    DeploymentState,
    Transition,
    find_deployment,
    pending_deployments,
    save_new,
    transition,
)

if TYPE_CHECKING:
    from ...clock import Clock, IdSource
    from ...config import Config
    from ...store.base import StateStore

__all__ = [
    "Deployment",
    "DeploymentState",
    "deployment_settings",
    "environment_for_ref",
    "request_deployment",
]

BRANCH_PREFIX = "refs/heads/"
_REVISION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._/@+-]{0,254}$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


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
    raw = config.automation("deployment").settings
    try:
        settings = DeploymentSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("automations.deployment.settings", format_errors(exc)) from None
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
    env = deployment_settings(config).environment_for_branch(branch)
    if env is not None and env not in config.environments:
        raise ConfigError(
            "automations.deployment.settings.branches",
            [f"{branch}: maps to unknown environment {env!r}; accepted: {', '.join(config.environments)}"],
        )
    return env


def deployment_id_for_event(source_event: str, environment: str) -> str:
    digest = hashlib.sha256(f"{source_event}\x00{environment}".encode()).hexdigest()[:20]
    return f"dep-{digest}"


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
) -> Deployment:
    """Persist a deployment in state ``requested``.

    With ``source_event`` (a webhook delivery id) the id is derived from it, so a redelivered
    push returns the existing deployment instead of creating a second one. Older pending
    deployments of the same environment are superseded: only the newest push goes out.
    """
    revision = check_revision(revision)
    if ref is not None:
        problem = ref_problem(ref)
        if problem:
            raise InputError(f"{ref[:120]!r} is not a valid git ref: {problem}", where="ref")
    if not environment:
        raise InputError("environment is empty", where="environment")
    dep_id = deployment_id_for_event(source_event, environment) if source_event else ids.new_id("dep-")
    now = clock.now()
    deployment = Deployment(
        id=dep_id,
        environment=environment,
        ref=ref,
        revision=revision,
        repository=repository,
        requested_by=requested_by,
        source_event=source_event,
        state=DeploymentState.requested,
        created_at=now,
        updated_at=now,
        history=[
            Transition(
                from_state=None,
                to_state=DeploymentState.requested,
                actor=requested_by,
                at=now,
                reason=f"push to {ref}" if source_event and ref else "manual request",
            )
        ],
    )
    if not save_new(store, deployment):
        existing = find_deployment(store, dep_id)
        if existing is not None:
            return existing
    supersede_older(store, clock, deployment)
    return deployment


def supersede_older(store: StateStore, clock: Clock, newest: Deployment) -> list[Deployment]:
    """Mark pending deployments of ``newest.environment`` created before it as superseded."""
    superseded = []
    for older in pending_deployments(store, newest.environment):
        if older.id == newest.id or (older.created_at, older.id) > (newest.created_at, newest.id):
            continue
        if older.state not in PENDING:
            continue
        try:
            superseded.append(
                transition(
                    store,
                    clock,
                    older,
                    DeploymentState.superseded,
                    actor="automation:deployment",
                    reason=f"newer request {newest.id} ({newest.revision[:12]}) for {newest.environment}",
                    changes={"superseded_by": newest.id},
                )
            )
        except InputError:
            # Moved concurrently (approved-and-started, or cancelled): nothing to supersede.
            continue
    return superseded
