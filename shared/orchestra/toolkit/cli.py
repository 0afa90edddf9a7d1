"""What every command shares, the core's and the automations': options, opening config and store,
output and exit codes."""

from __future__ import annotations

import functools
import getpass
import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from ..app import load_config
from ..config import Config
from ..errors import ConfigError, InputError, OrchestraError, StoreConfigError, TransientError
from ..metrics.names import FILE_METRICS as METRIC_NAMES
from ..models import RunStatus
from ..store import StateStore, open_store, store_url

if TYPE_CHECKING:
    from ..models import Run

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3
F = TypeVar("F", bound=Callable[..., Any])

# Piped output (CI logs, `| less`) gets a generous width instead of rich's 80 columns. Text from
# inputs (branch and file names, error text, summaries) is printed as it is: no ":name:" emoji
# codes; markup only where the code writes it (values go through escape() or Text).
console = Console(width=None if sys.stdout.isatty() else 150, emoji=False)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150, emoji=False)


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config_path",
        envvar="CONFIG_PATH",
        type=click.Path(dir_okay=False),
        help="YAML configuration file (default: CONFIG_PATH, else the built-in defaults).",
    )(fn)


def store_option(fn: F) -> F:
    return click.option(
        "--store",
        "store_url_opt",
        envvar="ORCHESTRA_STORE",
        help="sqlite:///PATH or firestore://PROJECT[/DATABASE] (default: ORCHESTRA_STORE, else config).",
    )(fn)


def format_option(fn: F) -> F:
    return click.option(
        "--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True
    )(fn)


def store_options(fn: F) -> F:
    """--config, --store and --format, with library errors mapped to exit codes: what every
    command that reads or changes recorded state takes."""
    return config_option(store_option(format_option(handle_errors(fn))))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Map library errors to the documented exit codes with a clear message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            err_console.print(
                Text.assemble(("error:", "bold red"), f" invalid configuration {exc.source}:"),
                highlight=False,
            )
            for problem in exc.problems:
                err_console.print(Text(f"  {problem}"), highlight=False, soft_wrap=True)
            sys.exit(EXIT_USAGE)
        except (InputError, StoreConfigError) as exc:
            fail(str(exc), EXIT_USAGE)
        except TransientError as exc:
            fail(f"{exc} (transient: safe to retry)", EXIT_FAILED)
        except OrchestraError as exc:
            fail(str(exc), EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def open_config(path: str | None) -> Config:
    """The configuration of --config, checked against the registered automations (settings
    validated once). The extra automations were loaded when ``orchestra`` started."""
    return load_config(path, extras=False)


def open_configured_store(config: Config, override: str | None) -> StateStore:
    return open_store(override or store_url(config.store))


def store_from_flags(config_path: str | None, store_url_opt: str | None) -> StateStore:
    """The store of --config / --store, for commands that need nothing else from the config."""
    return open_configured_store(open_config(config_path), store_url_opt)


# SERVICE.NAME: a Cloud Run service name, a dot, a metric name (the task says which it reads).
_SERVICE_METRIC = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?\.[a-z][a-z0-9_]{0,63}")


def metric_files(items: tuple[str, ...], *, per_service: bool = False) -> dict[str, str]:
    """``--metric NAME=PATH`` flags as {name: path}. With ``per_service`` (``orchestra run``) also
    ``SERVICE.NAME=PATH``, for tasks that read several services' metrics (cost); the task checks
    the metric names it reads."""
    paths: dict[str, str] = {}
    form = "NAME=PATH or SERVICE.NAME=PATH" if per_service else "NAME=PATH"
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not path:
            fail(f"--metric {item!r}: expected {form} with NAME one of {', '.join(METRIC_NAMES)}")
        if name not in METRIC_NAMES and not (per_service and _SERVICE_METRIC.fullmatch(name)):
            accepted = ", ".join(METRIC_NAMES) + (" or SERVICE.NAME" if per_service else "")
            fail(f"--metric {item!r}: unknown metric {name!r}; accepted: {accepted}")
        paths[name] = path
    return paths


def run_exit_code(runs: list[Run]) -> int:
    """2 when a run failed on its input (as a bad flag would), 1 when one failed or was rolled
    back, 3 when one was skipped because its circuit breaker is open (it did not run), else 0 (a
    run awaiting approval or whose actions a gate skipped did what it should)."""
    from ..breaker import skipped_by_breaker

    if any(r.status == RunStatus.failed and r.error and r.error.bad_input for r in runs):
        return EXIT_USAGE
    bad = {RunStatus.failed, RunStatus.rolled_back}
    if any(r.status in bad for r in runs):
        return EXIT_FAILED
    if any(skipped_by_breaker(r.status, r.reason) for r in runs):
        return EXIT_SKIPPED
    return EXIT_OK


def local_user() -> str:
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


def current_identity(store: StateStore | None = None, given: str | None = None) -> str:
    """Who this command acts as. Without a store, or against the local SQLite store: ``given``
    (``--as``) or ``user:$USER``. Against Firestore: the Google account of the credentials in
    use; ``given`` must name that account (else InputError, exit code 2)."""
    from ..identities import cli_identity

    return cli_identity(store, given, local_user=local_user)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
