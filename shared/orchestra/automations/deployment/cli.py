"""`orchestra deployments`: list, show, request, approve, reject and cancel deployments.

Who acts: with the local SQLite store, ``--as`` (default ``user:$USER``); against Firestore, the
Google account of the credentials in use — ``--as`` may only repeat it (``orchestra.identities``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.markup import escape

from ...models import format_timestamp
from ...toolkit.cli import (
    console,
    current_identity,
    fail,
    open_config,
    open_configured_store,
    print_json,
    store_from_flags,
    store_options,
)
from .state import TERMINAL, DeploymentState, get_deployment, list_deployments

if TYPE_CHECKING:
    from rich.table import Table

    from .state import Deployment

AS_HELP = (
    "with the local SQLite store (default user:$USER); against Firestore the Google account of the "
    "credentials in use, which --as may only repeat"
)

STATE_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "rolled_back": "red",
    "rejected": "yellow",
    "expired": "yellow",
    "superseded": "dim",
    "cancelled": "dim",
    "awaiting_approval": "magenta",
    "deploying": "cyan",
    "verifying": "cyan",
}


def _table(deployments: list[Deployment], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("id", "environment", "state", "revision", "ref", "requested by", "approved by", "updated"):
        table.add_column(col, no_wrap=col in ("id", "state"))
    for d in deployments:
        style = STATE_STYLE.get(d.state, "")
        table.add_row(
            d.id,
            d.environment,
            f"[{style}]{d.state}[/]" if style else str(d.state),
            escape(d.revision[:12]),
            escape(d.ref or "-"),
            escape(d.requested_by),
            escape(d.approved_by or "-"),
            format_timestamp(d.updated_at)[:19],
        )
    return table


def _print(deployment: Deployment, output_format: str) -> None:
    if output_format == "json":
        print_json(deployment.model_dump(mode="json"))
        return
    from rich.table import Table

    console.print(_table([deployment], f"deployment {deployment.id}"))
    history = Table(title="history", title_justify="left")
    for col in ("at", "from", "to", "actor", "reason"):
        history.add_column(col)
    for t in deployment.history:
        history.add_row(
            format_timestamp(t.at)[:19],
            str(t.from_state or "-"),
            str(t.to_state),
            escape(t.actor),
            escape(t.reason or ""),
        )
    console.print(history)
    if deployment.blocked:
        console.print(f"[red]blocked: {escape(deployment.blocked)}[/]")
    if deployment.deployed:
        console.print(
            f"deployed: {escape(str({k: v for k, v in deployment.deployed.items() if k != 'details'}))}"
        )
    if deployment.verification:
        health = deployment.verification.get("health", {})
        if health.get("reasons"):
            console.print(f"[red]verification: {escape('; '.join(health['reasons']))}[/]")
    if deployment.rolled_back_to:
        console.print(f"rolled back to: {escape(str(deployment.rolled_back_to.get('revision')))}")


@click.group("deployments")
def deployments_group() -> None:
    """Deployments: what is pending, who approved what, what went out and came back."""


@deployments_group.command("list")
@click.option("--environment", help="Only this environment.")
@click.option("--state", type=click.Choice([s.value for s in DeploymentState]))
@click.option("--pending", is_flag=True, help="Only deployments that have not finished.")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@store_options
def list_cmd(
    environment: str | None,
    state: str | None,
    pending: bool,
    limit: int,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """List deployments, newest first."""
    store = store_from_flags(config_path, store_url_opt)
    found = list_deployments(store, environment=environment, state=state, limit=None if pending else limit)
    if pending:
        found = [d for d in found if d.state not in TERMINAL][:limit]
    if output_format == "json":
        print_json([d.model_dump(mode="json") for d in found])
    else:
        console.print(_table(found, f"{len(found)} deployment(s)"))


@deployments_group.command("show")
@click.argument("deployment_id")
@store_options
def show_cmd(
    deployment_id: str, config_path: str | None, store_url_opt: str | None, output_format: str
) -> None:
    """Show one deployment with its full history."""
    _print(get_deployment(store_from_flags(config_path, store_url_opt), deployment_id), output_format)


@deployments_group.command("request")
@click.option("--environment", required=True, help="Target environment.")
@click.option("--revision", required=True, help="Commit SHA (or tag) to deploy.")
@click.option("--ref", help="Git ref it comes from, e.g. refs/heads/main.")
@click.option("--repository", default="", help="owner/name, for the record.")
@click.option("--as", "identity", help=f"Requester identity, {AS_HELP}.")
@store_options
def request_cmd(
    environment: str,
    revision: str,
    ref: str | None,
    repository: str,
    identity: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Request a deployment of REVISION to ENVIRONMENT (it goes out on the next deployment run)."""
    from ...clock import RandomIds, SystemClock
    from .requests import deployment_settings, request_deployment

    config = open_config(config_path)
    if environment not in config.environments:
        fail(f"--environment: unknown {environment!r}; accepted: {', '.join(config.environments)}")
    deployment_settings(config)  # a broken settings block fails here, not at the next run
    store = open_configured_store(config, store_url_opt)
    deployment = request_deployment(
        store,
        SystemClock(),
        RandomIds(),
        environment=environment,
        ref=ref,
        revision=revision,
        repository=repository,
        requested_by=current_identity(store, identity),
        source_event=None,
    )
    _print(deployment, output_format)


@deployments_group.command("approve")
@click.argument("deployment_id")
@click.option("--as", "identity", help=f"Approver identity (never the requester), {AS_HELP}.")
@click.option("--comment")
@store_options
def approve_cmd(
    deployment_id: str,
    identity: str | None,
    comment: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Approve DEPLOYMENT_ID; it goes out on the next deployment run inside its window."""
    from ...clock import SystemClock
    from .approvals import approve
    from .requests import deployment_settings

    config = open_config(config_path)
    store = open_configured_store(config, store_url_opt)
    deployment = approve(
        store,
        SystemClock(),
        deployment_settings(config),
        deployment_id,
        current_identity(store, identity),
        comment,
        config=config,
    )
    _print(deployment, output_format)


def _closing_command(name: str, summary: str) -> click.Command:
    """``reject`` and ``cancel``: the same command around the approvals function of that name."""

    @deployments_group.command(name, help=summary)
    @click.argument("deployment_id")
    @click.option("--as", "identity", help=f"Identity recorded, {AS_HELP}.")
    @click.option("--reason")
    @store_options
    def command(
        deployment_id: str,
        identity: str | None,
        reason: str | None,
        config_path: str | None,
        store_url_opt: str | None,
        output_format: str,
    ) -> None:
        from ...clock import SystemClock
        from . import approvals

        close = getattr(approvals, name)
        config = open_config(config_path)
        store = open_configured_store(config, store_url_opt)
        acting = current_identity(store, identity)
        _print(close(store, SystemClock(), deployment_id, acting, reason, config=config), output_format)

    return command


reject_cmd = _closing_command("reject", "Reject DEPLOYMENT_ID (requested or awaiting approval).")
cancel_cmd = _closing_command("cancel", "Cancel a pending DEPLOYMENT_ID (not yet deploying).")
