"""What every CLI command shares: options, opening config and store, output and exit codes."""

from __future__ import annotations

import functools
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from ..config import Config, load_config
from ..errors import ConfigError, InputError, OrchestraError, StoreConfigError, TransientError
from ..store import StateStore, open_store, store_url

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])

# Piped output (CI logs, `| less`) gets a generous width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)


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


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Map library errors to the documented exit codes with a clear message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            err_console.print(
                f"[bold red]error:[/] invalid configuration {escape(exc.source)}:", highlight=False
            )
            for problem in exc.problems:
                err_console.print(f"  {escape(problem)}", highlight=False, soft_wrap=True)
            sys.exit(EXIT_USAGE)
        except (InputError, StoreConfigError) as exc:
            fail(str(exc), EXIT_USAGE)
        except TransientError as exc:
            fail(f"{exc} (transient: safe to retry)", EXIT_FAILED)
        except OrchestraError as exc:
            fail(str(exc), EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def open_config(path: str | None) -> Config:
    return load_config(path)


def open_configured_store(config: Config, override: str | None) -> StateStore:
    return open_store(override or store_url(config.store))


def current_identity() -> str:
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
