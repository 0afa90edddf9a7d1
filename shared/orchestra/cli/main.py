"""`orchestra`: run automations, inspect runs, breakers and health, approve changes.

The runner, breakers, health checks and the area commands' machinery are imported inside the
commands that use them: every invocation pays for this module, and the pre-commit hook
(`orchestra workspace check`) and `--help` need none of them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click
from pydantic import BaseModel
from rich.markup import escape
from rich.text import Text

from ..inputs import Origin
from ..logs import configure_logging
from ..models import DecisionKind, Mode, RunStatus, TriggerKind
from ..registry import registry
from ..toolkit.cli import (
    EXIT_OK,
    EXIT_SKIPPED,
    config_option,
    console,
    current_identity,
    err_console,
    fail,
    format_option,
    handle_errors,
    metric_files,
    open_config,
    open_configured_store,
    print_json,
    run_exit_code,
    store_from_flags,
    store_option,
    store_options,
)
from .controller import controller_cmd
from .dlq import dlq_group

if TYPE_CHECKING:
    from ..models import Run
    from ..runner import Runner


class OrchestraGroup(click.Group):
    """The core's commands, plus those the registered automations bring (``Automation.cli()``).

    Plugins are imported only when a command is not one of the core's (or for the command list of
    ``--help``): the core's commands start without importing any automation."""

    def _plugin_commands(self, first: str | None = None) -> dict[str, click.Command]:
        found: dict[str, click.Command] = {}
        names = registry.names()
        # The automation named like the command usually brings it: try it alone first.
        for group in ([first], names) if first in names else (names,):
            for name in group:
                plugin = registry.get_class(name)
                contributed = plugin.cli() if plugin is not None else None
                if contributed is None:
                    continue
                for command in [contributed] if isinstance(contributed, click.Command) else contributed:
                    if command.name and command.name not in self.commands:
                        found.setdefault(command.name, command)
            if first is not None and first in found:
                break
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        _load_plugins()
        return self._plugin_commands(cmd_name).get(cmd_name)


@click.group(
    cls=OrchestraGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(package_name="orchestra-automation")
def cli() -> None:
    """Orchestra Automation: event-driven automation for Google Cloud."""
    configure_logging()
    _load_plugins()


@handle_errors
def _load_plugins() -> None:
    """Operators' own automations, named in ORCHESTRA_EXTRA_AUTOMATIONS (as for the functions):
    loaded once, here, so that every command and the command list know them; the commands then
    load their configuration and assemble their app without loading them again."""
    from ..app import EXTRA_AUTOMATIONS_ENV, load_extra_automations

    load_extra_automations(os.environ.get(EXTRA_AUTOMATIONS_ENV), registry)


def _params_from_flags(
    repo: str | None,
    metrics: tuple[str, ...],
    service: str | None,
    billing: str | None,
    usage: str | None,
    params: tuple[str, ...],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if repo:
        out["repo"] = repo
    if metrics:
        out["metrics"] = metric_files(metrics, per_service=True)
    if service:
        out["service"] = service
    if billing:
        out["billing"] = billing
    if usage:
        out["usage"] = usage
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--param {item!r}: expected KEY=VALUE")
        # Lists and maps are YAML ("[high, low]"); scalars stay text so that a revision like
        # 0123456 is not read as an octal number — each automation's Params model converts types.
        # Either way the value is checked as the YAML loader checks text (size, UTF-8, control
        # characters): a bad value is exit 2 with one line, never a traceback.
        from ..yamlsafe import MAX_PARAM_BYTES, decode, load

        where = f"--param {key}"
        if value[:1] in ("[", "{"):
            out[key] = load(value, source=where, max_bytes=MAX_PARAM_BYTES)
        else:
            out[key] = decode(value, source=where, max_bytes=MAX_PARAM_BYTES)
    return out


def _params_help(model: type[BaseModel]) -> list[tuple[str, str]]:
    """(``--param NAME=TYPE``, "description [default: …]") rows for a Params model."""
    rows: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        if field.is_required():
            default = "[required]"
        else:
            value = field.get_default(call_default_factory=True)
            shown = json.dumps(value) if isinstance(value, list | dict) else str(value)
            default = f"[default: {shown}]" if value is not None else ""
        text = " ".join(part for part in (field.description or "", default) if part)
        rows.append((f"--param {name}={_type_name(field.annotation)}", text))
    return rows


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    if text is None:
        text = str(annotation).replace("typing.", "")
    return text.replace("NoneType", "None")


class RunCommand(click.Command):
    """``orchestra run --help`` lists the registered tasks; ``orchestra run TASK --help`` also
    lists TASK's parameters, generated from its Params model."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        previous = ""
        for token in args:
            # Every option of `run` takes a value: a bare token after an option is its value.
            if not token.startswith("-") and not (previous.startswith("-") and "=" not in previous):
                ctx.meta["orchestra.run.task"] = token
                break
            previous = token
        return super().parse_args(ctx, args)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help_text(ctx, formatter)
        with formatter.section("Tasks"):
            formatter.write_text(", ".join([*registry.names(), "all"]))
        task = ctx.meta.get("orchestra.run.task")
        if not task or task == "all":
            return
        plugin = registry.get_class(task)
        if plugin is None:
            with formatter.section(f"Parameters of {task}"):
                formatter.write_text(f"unknown automation {task!r}")
            return
        with formatter.section(f"Parameters of {task}"):
            if plugin.description:
                formatter.write_text(plugin.description)
                formatter.write_paragraph()
            rows = _params_help(plugin.Params)
            if rows:
                formatter.write_dl(rows)
            else:
                formatter.write_text("none")


@cli.command("run", cls=RunCommand)
@click.argument("task")
@click.option("--environment", help="development, staging, production (default from config).")
@click.option("--mode", type=click.Choice([m.value for m in Mode]), default="analyze", show_default=True)
@click.option("--automation-level", type=click.IntRange(0, 3), help="0 analyze only … 3 apply all risks.")
@click.option("--trigger-id", help="Idempotency key: the same key never runs twice.")
@click.option("--repo", help="Repository path (workspace).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME=PATH", help="Metric CSV (repeatable).")
@click.option("--service", help="Service name (performance, infrastructure).")
@click.option("--billing", help="Billing export CSV/JSON lines (cost).")
@click.option("--usage", help="AI request log JSON lines (ai-services).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Any other parameter.")
@click.option(
    "--as",
    "identity",
    help="Requester recorded with the run (default user:$USER); against Firestore it must be the Google "
    "account in use.",
)
@store_options
def run_cmd(
    task: str,
    environment: str | None,
    mode: str,
    automation_level: int | None,
    trigger_id: str | None,
    repo: str | None,
    metrics: tuple[str, ...],
    service: str | None,
    billing: str | None,
    usage: str | None,
    params: tuple[str, ...],
    identity: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Run TASK (a registered automation, see Tasks below) or `all` of them.

    `orchestra run TASK --help` lists TASK's parameters; pass them with --param NAME=VALUE (or
    the shortcuts --repo, --metric, --service, --billing, --usage)."""
    from ..app import build_app
    from ..runner import RunRequest
    from ..toolkit.runs_view import print_run_details, runs_table

    config = open_config(config_path)
    run_params = _params_from_flags(repo, metrics, service, billing, usage, params)
    if task == "all" and run_params:
        fail("`run all` takes no automation-specific flags; run one task to pass --repo, --metric, …")
    statuses: list[Any] = []

    def progress(message: str) -> None:
        for status in statuses:
            status.update(message)

    app = build_app(config=config, store_url=store_url_opt, progress=progress)
    # Against Firestore the requester is the Google account in use, so that nobody can file a
    # run as someone else and then approve it themselves.
    requester = current_identity(app.store, identity)
    requests = [
        RunRequest(
            task=name,
            environment=environment,
            mode=Mode(mode),
            automation_level=automation_level,
            params=dict(run_params),
            trigger_kind=TriggerKind.manual,
            trigger_id=trigger_id,
            requested_by=requester,
            origin=Origin.local,
        )
        for name in (registry.names() if task == "all" else [task])
    ]
    interactive = output_format == "text" and err_console.is_terminal
    with err_console.status("starting…") if interactive else contextlib.nullcontext() as status:
        if status is not None:
            statuses.append(status)
        runner = app.runner
        for request in requests:  # validate everything before running anything
            runner.validate(request)
        runs: list[Run] = []
        duplicates: set[str] = set()
        for request in requests:
            progress(f"running {request.task}…")
            outcome = runner.submit(request)
            runs.append(outcome.run)
            if outcome.duplicate:
                duplicates.add(outcome.run.id)
        now = runner.clock.now()
    held = [r for r in runs if r.id in duplicates and r.status == RunStatus.running]
    held_ids = {r.id for r in held}
    if output_format == "json":
        payload = [r.model_dump(mode="json") for r in runs]
        print_json(payload if task == "all" else payload[0])
    else:
        console.print(runs_table(runs))
        for run in runs:
            console.print()
            if run.id in duplicates and run.id not in held_ids:
                console.print(f"[dim]{run.id}: trigger already handled; showing the existing run[/]")
            print_run_details(console, run)
            registry.create(run.task).render(run, console)
    for run in held:
        err_console.print(Text(_lease_wait_message(run, now)), highlight=False, soft_wrap=True)
    code = run_exit_code(runs)
    sys.exit(EXIT_SKIPPED if held and code == EXIT_OK else code)


def _lease_wait_message(run: Run, now: dt.datetime) -> str:
    """Why a re-submitted trigger did not run: its run is `running` under another owner's lease
    (that owner may be alive, or may have died), and who takes it over and when."""
    head = f"{run.id}: trigger {run.trigger_id} was not run again: its run is still running"
    takeover = "or a later delivery of this trigger takes the run over"
    if run.lease is None:
        return f"{head} without a lease; `orchestra runs recover` {takeover} (exit 3)."
    until = run.lease.expires_at.isoformat()
    if run.lease.expires_at > now:
        return (
            f"{head} under the lease of {run.lease.owner}, waiting for the lease to expire at {until}. "
            f"If that owner died, `orchestra runs recover` after {until} {takeover} (exit 3)."
        )
    return (
        f"{head} under the lease of {run.lease.owner}, which expired at {until}; "
        f"`orchestra runs recover` {takeover} (exit 3)."
    )


@cli.group("runs")
def runs_group() -> None:
    """Inspect and recover runs."""


@runs_group.command("list")
@click.option("--task", help="Only runs of this automation.")
@click.option("--status", type=click.Choice([s.value for s in RunStatus]))
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@click.option("--trigger-id", help="Runs of this trigger / event id.")
@store_options
def runs_list(
    task: str | None,
    status: str | None,
    limit: int,
    trigger_id: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """List recent runs, newest first."""
    from ..toolkit.runs_view import runs_table

    store = store_from_flags(config_path, store_url_opt)
    runs = store.list_runs(task=task, status=status, trigger_id=trigger_id, limit=limit)
    if trigger_id and not runs:
        runs = store.list_runs(task=task, status=status, source_event=trigger_id, limit=limit)
    if output_format == "json":
        print_json([r.model_dump(mode="json") for r in runs])
    else:
        console.print(runs_table(runs, title=f"{len(runs)} run(s)"))


@runs_group.command("show")
@click.argument("run_id")
@store_options
def runs_show(run_id: str, config_path: str | None, store_url_opt: str | None, output_format: str) -> None:
    """Show one run with its findings and actions."""
    from ..toolkit.runs_view import print_run_details, runs_table

    run = store_from_flags(config_path, store_url_opt).get_run(run_id)
    if run is None:
        fail(f"no run with id {run_id!r} (see `orchestra runs list`)")
    if output_format == "json":
        print_json(run.model_dump(mode="json"))
    else:
        console.print(runs_table([run]))
        print_run_details(console, run, max_findings=1000)
        try:
            registry.create(run.task).render(run, console)
        except Exception:  # noqa: BLE001 - rendering extras must never hide the run itself
            pass


@runs_group.command("recover")
@store_options
def runs_recover(config_path: str | None, store_url_opt: str | None, output_format: str) -> None:
    """Find runs whose owner died (expired lease) and retry, fail, verify or roll them back."""
    from ..toolkit.runs_view import runs_table

    recovered = _runner(config_path, store_url_opt).recover()
    if output_format == "json":
        print_json([r.model_dump(mode="json") for r in recovered])
    elif recovered:
        console.print(runs_table(recovered, title=f"{len(recovered)} run(s) recovered"))
    else:
        console.print("No stale runs or expired approvals.")


@runs_group.command("purge")
@config_option
@store_option
@handle_errors
def runs_purge(config_path: str | None, store_url_opt: str | None) -> None:
    """Delete runs, events and dead letters past their retention (`expires_at`). Firestore's TTL
    policy does this in the cloud; the SQLite store relies on this sweep."""
    from ..clock import SystemClock

    collections = [c.name for c in registry.collections()]
    removed = store_from_flags(config_path, store_url_opt).purge_expired(SystemClock().now(), collections)
    console.print(f"removed {removed} expired record(s)")


@cli.group("config")
def config_group() -> None:
    """Validate and show configuration."""


@config_group.command("validate")
@config_option
@handle_errors
def config_validate(config_path: str | None) -> None:
    """Check a configuration file; every problem is listed as path.to.field: problem. Notes
    follow for scheduled automations that get no schedule in the cloud or here (and why)."""
    from ..scheduling import configured_schedules

    config = open_config(config_path)
    console.print(
        f"configuration OK: {len(config.environments)} environments, {len(config.automations)} automations",
        highlight=False,
    )
    for target in ("cloud", "local"):
        for note in configured_schedules(config, registry=registry, target=target).notes:
            console.print(Text(f"note: {note}"), highlight=False, soft_wrap=True)


@config_group.command("show")
@config_option
@store_option
@format_option
@handle_errors
def config_show(config_path: str | None, store_url_opt: str | None, output_format: str) -> None:
    """Print the effective configuration (defaults filled in), with the store that commands use:
    --store, else ORCHESTRA_STORE, else the configuration's `store`. Where the store came from is
    a YAML comment (text) or a line on stderr (json)."""
    from ..store import STORE_ENV_VAR

    data = open_config(config_path).model_dump(mode="json")
    configured = data["store"]
    source = click.get_current_context().get_parameter_source("store_url_opt")
    if store_url_opt and source == click.core.ParameterSource.COMMANDLINE:
        origin = f"from --store (the configuration says {configured})"
    elif store_url_opt:
        origin = f"from {STORE_ENV_VAR} (the configuration says {configured})"
    else:
        origin = f"from the configuration ({config_path or 'built-in defaults'}); {STORE_ENV_VAR} is not set"
    data["store"] = store_url_opt or configured
    if output_format == "json":
        print_json(data)
        err_console.print(Text(f"store: {origin}"), highlight=False, soft_wrap=True)
    else:
        import yaml

        click.echo(f"# store: {origin}")
        click.echo(yaml.safe_dump(data, sort_keys=False))


@cli.group("breakers", invoke_without_command=True)
@store_options
@click.pass_context
def breakers_group(
    ctx: click.Context, config_path: str | None, store_url_opt: str | None, output_format: str
) -> None:
    """List circuit breakers (or `reset NAME`)."""
    ctx.obj = {"config_path": config_path, "store": store_url_opt}
    if ctx.invoked_subcommand is not None:
        return
    from ..breaker import list_breakers

    records = list_breakers(store_from_flags(config_path, store_url_opt))
    if output_format == "json":
        print_json([r.model_dump(mode="json") for r in records])
        return
    if not records:
        console.print("No breaker has recorded a failure: all closed.")
        return
    from rich.table import Table

    table = Table(title="Circuit breakers", title_justify="left")
    for col in ("name", "state", "failures", "opened at", "last error"):
        table.add_column(col)
    for r in records:
        table.add_row(r.name, r.state, str(r.failures), str(r.opened_at or "-"), r.last_error or "")
    console.print(table)


@breakers_group.command("reset")
@click.argument("name")
@click.pass_context
@handle_errors
def breakers_reset(ctx: click.Context, name: str) -> None:
    """Close breaker NAME (e.g. automation:performance:production)."""
    from ..breaker import CircuitBreaker, find_breaker, list_breakers
    from ..clock import SystemClock

    config = open_config(ctx.obj["config_path"])
    store = open_configured_store(config, ctx.obj["store"])
    if find_breaker(store, name) is None:
        known = ", ".join(b.name for b in list_breakers(store)) or "none recorded"
        fail(f"no breaker named {name!r}; known: {known}")
    CircuitBreaker(store, name, config.runner.breaker, SystemClock()).reset()
    console.print(f"breaker {name} closed")


AS_HELP = (
    "Identity to act as, with the local SQLite store (default user:$USER). Against Firestore the "
    "command acts as the Google account of its credentials; --as may only name that account."
)


@cli.command("approve")
@click.argument("subject_id", metavar="ID")
@click.option("--as", "identity", help=AS_HELP)
@click.option("--comment")
@store_options
def approve_cmd(
    subject_id: str,
    identity: str | None,
    comment: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Approve what waits under ID, as someone other than its requester: a run's waiting actions
    (applied now) or a deployment (it goes out on the next deployment run inside its window)."""
    _decide(DecisionKind.approve, subject_id, identity, comment, config_path, store_url_opt, output_format)


@cli.command("reject")
@click.argument("subject_id", metavar="ID")
@click.option("--as", "identity", help=AS_HELP)
@click.option("--reason")
@store_options
def reject_cmd(
    subject_id: str,
    identity: str | None,
    reason: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Reject what waits under ID: a run's waiting actions or a deployment."""
    _decide(DecisionKind.reject, subject_id, identity, reason, config_path, store_url_opt, output_format)


def _decide(
    kind: DecisionKind,
    subject_id: str,
    identity: str | None,
    comment: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    runner = _runner(config_path, store_url_opt)
    decided = runner.decide(subject_id, kind, current_identity(runner.store, identity), comment)
    if decided.run is not None:
        _print_one(decided.run, output_format)
        if kind == DecisionKind.approve:
            sys.exit(run_exit_code([decided.run]))
        return
    if output_format == "json":
        print_json(decided.record)
        return
    console.print(
        Text.assemble(
            f"{decided.kind} {subject_id}: ", decided.decision.describe(), f" (now {decided.status})"
        ),
        highlight=False,
    )


def _runner(config_path: str | None, store_url_opt: str | None) -> Runner:
    from ..app import build_app

    return build_app(config=open_config(config_path), store_url=store_url_opt).runner


def _print_one(run: Run, output_format: str) -> None:
    from ..toolkit.runs_view import print_run_details, runs_table

    if output_format == "json":
        print_json(run.model_dump(mode="json"))
    else:
        console.print(runs_table([run]))
        print_run_details(console, run)


@cli.command("health")
@store_options
def health_cmd(config_path: str | None, store_url_opt: str | None, output_format: str) -> None:
    """Store reachable, breakers, stale leases, overdue schedules, approvals. Exit 0 healthy,
    1 degraded, 2 unhealthy."""
    from ..clock import SystemClock
    from ..health import Status, check_health_opening

    config = open_config(config_path)
    report = check_health_opening(
        config, lambda: open_configured_store(config, store_url_opt), SystemClock(), registry
    )
    if output_format == "json":
        print_json(report.model_dump(mode="json"))
    else:
        style = {"healthy": "green", "degraded": "yellow", "unhealthy": "bold red"}[report.status]
        console.print(f"[{style}]{report.status}[/]")
        for check in report.checks:
            mark = "[green]ok[/]" if check.ok else "[yellow]!![/]"
            console.print(f"  {mark} {check.name}: {escape(check.detail)}", highlight=False)
    sys.exit({Status.healthy: 0, Status.degraded: 1, Status.unhealthy: 2}[report.status])


@cli.command("console")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free port."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="A loopback address.")
@click.option("--as", "identity", help=AS_HELP)
@config_option
@store_option
@handle_errors
def console_cmd(
    port: int, host: str, identity: str | None, config_path: str | None, store_url_opt: str | None
) -> None:
    """Serve the operator console on HOST:PORT and print a one-time login URL (it works once)."""
    from ..app import build_app
    from ..console.serve import check_loopback, serve

    check_loopback(host)
    app = build_app(config=open_config(config_path), store_url=store_url_opt)
    serve(app, current_identity(app.store, identity), host=host, port=port)


for _command in (dlq_group, controller_cmd):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="orchestra")


if __name__ == "__main__":
    main()
