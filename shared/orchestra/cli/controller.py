"""`orchestra controller`: the long-running controller (continuous mode) or one pass (once)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

import click

from ..errors import InputError
from ..models import Mode, RunStatus
from ..registry import Registry
from ..registry import registry as default_registry
from ..toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    console,
    err_console,
    fail,
    metric_files,
    open_config,
    print_json,
    store_options,
)

if TYPE_CHECKING:
    from ..automation import Automation
    from ..config import Config
    from ..continuous import Submitted, WatchSettings


def build_watch_settings(
    config: Config,
    services: tuple[str, ...],
    files: dict[str, str],
    interval_seconds: float,
    handler: type[Automation],
) -> WatchSettings:
    """The metrics the watch reads: the given files, else the live source of the automation that
    handles breaches (``handler.watch_source``)."""
    from ..continuous import WatchSettings
    from ..metrics import source_from_spec

    if files:
        if len(services) > 1:
            raise InputError(
                "metric files describe one service: give at most one --service", where="--service"
            )
        reader = source_from_spec({"type": "files", "paths": files, "label": "watched metric files"})
        return WatchSettings(
            reader=reader,
            services=[services[0] if services else "service"],
            interval_seconds=interval_seconds,
            run_params={"metrics": files},
        )
    source = handler.watch_source(config, services)
    return WatchSettings(
        reader=source_from_spec(source.spec),
        services=list(source.services),
        interval_seconds=interval_seconds,
    )


def default_run_mode(controller_mode: str) -> Mode:
    """The mode of the runs a controller starts when ``--run-mode`` is not given: one pass from a
    shell or cron analyzes, as ``orchestra run`` does; the long-running controller applies, as the
    deployed Cloud Scheduler jobs do (the automation level and approval gates still decide)."""
    return Mode.analyze if controller_mode == "once" else Mode.apply


def _exit_code(done: list[Submitted]) -> int:
    bad = {RunStatus.failed, RunStatus.rolled_back}
    if any((s.error and s.outcome is None) or (s.run is not None and s.run.status in bad) for s in done):
        return EXIT_FAILED
    return EXIT_OK


@click.command("controller")
@click.option(
    "--mode",
    type=click.Choice(["continuous", "once"]),
    default="continuous",
    show_default=True,
    help="continuous: run schedules until SIGTERM; once: run the due slots and exit (for cron).",
)
@click.option(
    "--environment", help="Target of schedules without their own `environments` (default from config)."
)
@click.option(
    "--run-mode",
    type=click.Choice([m.value for m in Mode]),
    help="Mode of the runs started (default: analyze with --mode once, as `orchestra run`; apply with "
    "--mode continuous, as the deployed schedules). In apply mode the automation level and approval "
    "gates decide what applies, and files are written only where the configuration says.",
)
@click.option(
    "--automation-level", type=click.IntRange(0, 3), help="Level of the runs (default: environment's)."
)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address /healthz listens on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="/healthz port (0: any)."
)
@click.option("--tick-seconds", type=click.FloatRange(min=0.05), default=30.0, show_default=True)
@click.option(
    "--grace-seconds",
    type=click.FloatRange(min=0),
    default=25.0,
    show_default=True,
    help="On SIGTERM, how long the run in hand may take to finish before it is released.",
)
@click.option(
    "--recover-seconds",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="How often to recover runs whose owner died (0: never).",
)
@click.option("--watch-metrics", is_flag=True, help="Evaluate the alert thresholds and start focused runs.")
@click.option("--service", "services", multiple=True, help="Service to watch (repeatable).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME=PATH", help="Watch these metric CSV files.")
@click.option("--watch-interval-seconds", type=click.FloatRange(min=1), default=60.0, show_default=True)
@store_options
def controller_cmd(
    mode: str,
    environment: str | None,
    run_mode: str | None,
    automation_level: int | None,
    host: str,
    port: int,
    tick_seconds: float,
    grace_seconds: float,
    recover_seconds: float,
    watch_metrics: bool,
    services: tuple[str, ...],
    metrics: tuple[str, ...],
    watch_interval_seconds: float,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Run every configured schedule through the runner (and optionally watch metrics).

    Slots are deduplicated by trigger id (schedule:TASK:ENV:TIME), so replicas never run a slot
    twice and a slot missed during downtime runs once. Serves GET /healthz in continuous mode.
    """
    from ..app import build_app
    from ..automation import EventKind
    from ..continuous import Controller, ControllerOptions, HealthServer, MetricsWatch
    from ..registry import NO_BREACH_HANDLER
    from ..scheduling import configured_schedules
    from ..toolkit.runs_view import runs_table

    if not os.environ.get("ORCHESTRA_LOG_LEVEL"):
        logging.getLogger("orchestra.controller").setLevel(logging.INFO)
    if (services or metrics) and not watch_metrics:
        fail("--service and --metric configure the metrics watch: add --watch-metrics")
    config = open_config(config_path)
    registry: Registry = default_registry
    env_name = environment or config.default_environment
    schedule_set = configured_schedules(config, env_name, registry=registry)
    watch = None
    if watch_metrics:
        handler = registry.handler(EventKind.breach)
        if handler is None:
            fail(f"--watch-metrics starts runs for threshold breaches, but {NO_BREACH_HANDLER}")
        watch_settings = build_watch_settings(
            config, services, metric_files(metrics), watch_interval_seconds, handler
        )
        watch = MetricsWatch(config, env_name, watch_settings)
    app = build_app(config=config, store_url=store_url_opt, registry=registry)
    runner = app.runner
    options = ControllerOptions(
        environment=env_name,
        mode=Mode(run_mode) if run_mode else default_run_mode(mode),
        automation_level=automation_level,
        tick_seconds=tick_seconds,
        grace_seconds=grace_seconds,
        recover_seconds=recover_seconds,
    )
    controller = Controller(runner, schedule_set.schedules, options, watch=watch)
    for task in schedule_set.unavailable:
        err_console.print(f"[dim]{task}: scheduled in the configuration but not available; not scheduled[/]")
    for note in schedule_set.notes:
        err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)

    if mode == "once":
        done = controller.tick()
        runs = [s.run for s in done if s.run is not None]
        if output_format == "json":
            print_json(
                [
                    {
                        "trigger_id": s.request.trigger_id,
                        "task": s.request.task,
                        "environment": s.request.environment,
                        "duplicate": bool(s.outcome and s.outcome.duplicate),
                        "error": s.error,
                        "run": s.run.model_dump(mode="json") if s.run else None,
                    }
                    for s in done
                ]
            )
        else:
            if runs:
                console.print(runs_table(runs, title=f"{len(runs)} run(s) for due slots"))
            for s in done:
                if s.error:
                    console.print(f"[red]{s.request.trigger_id}: {s.error}[/]", highlight=False)
            if not done:
                console.print("Nothing due.")
        sys.exit(_exit_code(done))

    server = HealthServer(controller, config, host, port)
    server.start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        err_console.print(f"{signal.Signals(signum).name}: stopping after the run in hand", highlight=False)
        controller.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bound_host, bound_port = server.address
    names = ", ".join(f"{s.task}@{s.environment} ({s.cron})" for s in schedule_set.schedules) or "none"
    err_console.print(
        f"orchestra controller {runner.owner}: schedules {names}", highlight=False, soft_wrap=True
    )
    if watch is not None:
        err_console.print(
            f"watching {', '.join(watch.settings.services)} ({watch.settings.reader.describe()}) against "
            f"{', '.join(watch.rules) or 'no rule for ' + env_name}",
            highlight=False,
            soft_wrap=True,
        )
    err_console.print(f"healthz on http://{bound_host}:{bound_port}/healthz", highlight=False)
    try:
        controller.run_forever()
    finally:
        server.stop()
        app.close()
    sys.exit(EXIT_OK)
