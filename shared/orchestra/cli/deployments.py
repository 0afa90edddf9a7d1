"""`orchestra deployments`: list, show, request, approve, reject and cancel deployments."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from ..automations.deployment.approvals import approve, cancel, reject
from ..automations.deployment.requests import deployment_settings, request_deployment
from ..automations.deployment.state import (
    TERMINAL,
    Deployment,
    DeploymentState,
    get_deployment,
    list_deployments,
)
from ..clock import RandomIds, SystemClock
from ..models import format_timestamp
from .common import (
    config_option,
    console,
    current_identity,
    fail,
    format_option,
    handle_errors,
    open_config,
    open_configured_store,
    print_json,
    store_option,
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
@config_option
@store_option
@format_option
@handle_errors
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
    store = open_configured_store(open_config(config_path), store_url_opt)
    found = list_deployments(store, environment=environment, state=state, limit=None if pending else limit)
    if pending:
        found = [d for d in found if d.state not in TERMINAL][:limit]
    if output_format == "json":
        print_json([d.model_dump(mode="json") for d in found])
    else:
        console.print(_table(found, f"{len(found)} deployment(s)"))


@deployments_group.command("show")
@click.argument("deployment_id")
@config_option
@store_option
@format_option
@handle_errors
def show_cmd(
    deployment_id: str, config_path: str | None, store_url_opt: str | None, output_format: str
) -> None:
    """Show one deployment with its full history."""
    store = open_configured_store(open_config(config_path), store_url_opt)
    _print(get_deployment(store, deployment_id), output_format)


@deployments_group.command("request")
@click.option("--environment", required=True, help="Target environment.")
@click.option("--revision", required=True, help="Commit SHA (or tag) to deploy.")
@click.option("--ref", help="Git ref it comes from, e.g. refs/heads/main.")
@click.option("--repository", default="", help="owner/name, for the record.")
@click.option("--as", "identity", help="Requester identity (default user:$USER).")
@config_option
@store_option
@format_option
@handle_errors
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
        requested_by=identity or current_identity(),
        source_event=None,
    )
    _print(deployment, output_format)


@deployments_group.command("approve")
@click.argument("deployment_id")
@click.option(
    "--as", "identity", help="Approver identity (must differ from the requester; default user:$USER)."
)
@click.option("--comment")
@config_option
@store_option
@format_option
@handle_errors
def approve_cmd(
    deployment_id: str,
    identity: str | None,
    comment: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Approve DEPLOYMENT_ID; it goes out on the next deployment run inside its window."""
    config = open_config(config_path)
    store = open_configured_store(config, store_url_opt)
    deployment = approve(
        store,
        SystemClock(),
        deployment_settings(config),
        deployment_id,
        identity or current_identity(),
        comment,
    )
    _print(deployment, output_format)


@deployments_group.command("reject")
@click.argument("deployment_id")
@click.option("--as", "identity", help="Identity recorded (default user:$USER).")
@click.option("--reason")
@config_option
@store_option
@format_option
@handle_errors
def reject_cmd(
    deployment_id: str,
    identity: str | None,
    reason: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Reject DEPLOYMENT_ID (requested or awaiting approval)."""
    store = open_configured_store(open_config(config_path), store_url_opt)
    deployment = reject(store, SystemClock(), deployment_id, identity or current_identity(), reason)
    _print(deployment, output_format)


@deployments_group.command("cancel")
@click.argument("deployment_id")
@click.option("--as", "identity", help="Identity recorded (default user:$USER).")
@click.option("--reason")
@config_option
@store_option
@format_option
@handle_errors
def cancel_cmd(
    deployment_id: str,
    identity: str | None,
    reason: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Cancel a pending DEPLOYMENT_ID (not yet deploying)."""
    store = open_configured_store(open_config(config_path), store_url_opt)
    deployment = cancel(store, SystemClock(), deployment_id, identity or current_identity(), reason)
    _print(deployment, output_format)
