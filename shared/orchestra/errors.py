"""Error taxonomy.

Every error the library raises on purpose is an :class:`OrchestraError`. The split that matters
operationally is *permanent* versus *transient*: permanent errors (bad input, bad configuration,
4xx answers) are recorded and never retried; transient ones (store unavailable, 5xx, 429,
timeouts) are retried with backoff and then surfaced so the platform redelivers the trigger.
"""

from __future__ import annotations


class OrchestraError(Exception):
    """Base class. ``transient`` tells the runner whether retrying can help."""

    transient: bool = False


class InputError(OrchestraError):
    """The caller sent something we cannot accept (file, flag, event payload)."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(OrchestraError):
    """The configuration file is invalid. ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid configuration {source}:\n{lines}")


class UnknownTaskError(InputError):
    pass


class TransientError(OrchestraError):
    """A dependency failed in a way that may succeed on retry."""

    transient = True


class StoreUnavailable(TransientError):
    """The state store could not be reached or answered with a retryable error."""


class StoreConfigError(OrchestraError):
    """The state store location is unusable (bad URL, unreadable file): not retryable."""


class LeaseLost(OrchestraError):
    """Another owner took over a run or lock we believed we held."""


class IllegalTransition(InputError):
    pass


class ApprovalRefused(InputError):
    pass


class NotFound(InputError):
    pass


def is_transient(exc: BaseException) -> bool:
    """Classify any exception: ours by flag, Google API errors by status, timeouts as transient."""
    if isinstance(exc, OrchestraError):
        return exc.transient
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    code = getattr(exc, "code", None)
    status = code if isinstance(code, int) else getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    # google.api_core exceptions expose grpc status names; avoid importing the module here.
    name = type(exc).__name__
    return name in {
        "ServiceUnavailable",
        "DeadlineExceeded",
        "InternalServerError",
        "TooManyRequests",
        "ResourceExhausted",
        "Aborted",
        "BadGateway",
        "GatewayTimeout",
        "RetryError",
    }
