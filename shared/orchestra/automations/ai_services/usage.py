"""AI request logs: JSON lines files and Cloud Logging (``entries.list``), one record per request.

Fields (accepted spellings in brackets): ``timestamp`` [time], ``model`` [model_version],
``prompt_hash`` or ``prompt`` (text, hashed here), ``input_tokens`` [prompt_tokens,
promptTokenCount], ``cached_input_tokens`` [cached_tokens, cachedContentTokenCount] (default 0),
``output_tokens`` [completion_tokens, candidatesTokenCount], ``latency_ms``, ``status``
(``ok`` / ``error`` / ``429``, or an HTTP status code), optional ``route`` [feature],
``prefix_hash`` + ``prefix_tokens`` (an application-reported shared prompt prefix).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import InputError, OrchestraError, TransientError
from ...inputs import DEFAULT_MAX_BYTES
from ...toolkit.rows import BadRows, RowCounter, is_name, json_objects, open_lines, short

if TYPE_CHECKING:
    from . import LoggingSettings

FIELDS: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time"),
    "model": ("model", "model_version"),
    "input_tokens": ("input_tokens", "prompt_tokens", "promptTokenCount"),
    "output_tokens": ("output_tokens", "completion_tokens", "candidatesTokenCount"),
    "latency_ms": ("latency_ms",),
    "status": ("status",),
    "cached_input_tokens": ("cached_input_tokens", "cached_tokens", "cachedContentTokenCount"),
    "prompt_hash": ("prompt_hash",),
    "prompt": ("prompt",),
    "route": ("route", "feature"),
    "prefix_hash": ("prefix_hash",),
    "prefix_tokens": ("prefix_tokens",),
}
REQUIRED = ("timestamp", "model", "input_tokens", "output_tokens", "latency_ms", "status")
STATUS_OK, STATUS_ERROR, STATUS_THROTTLED = 0, 1, 2
NO_ROUTE = "(no route)"


@dataclass
class UsageData:
    t_ms: np.ndarray
    model: np.ndarray  # codes into model_names
    route: np.ndarray
    prompt: np.ndarray  # codes of prompt identity (-1: unknown)
    input_tokens: np.ndarray
    cached_tokens: np.ndarray
    output_tokens: np.ndarray
    latency_ms: np.ndarray
    status: np.ndarray
    prefix: np.ndarray  # codes of reported prefix hashes (-1: none)
    prefix_tokens: np.ndarray
    model_names: list[str]
    route_names: list[str]
    prefix_names: list[str]
    texts: dict[int, str]  # row -> raw prompt text (only when logs carry it)
    source: str
    rows: int
    bad: BadRows
    sample: bool = False
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.t_ms.shape[0])

    @property
    def span_days(self) -> float:
        if len(self) < 2:
            return 0.0
        return float(self.t_ms.max() - self.t_ms.min()) / 86_400_000

    def summary(self) -> dict[str, Any]:
        first = _iso(int(self.t_ms.min())) if len(self) else None
        last = _iso(int(self.t_ms.max())) if len(self) else None
        return {
            "source": self.source,
            "sample": self.sample,
            "rows": self.rows,
            "requests": len(self),
            "bad_rows": self.bad.as_dict(),
            "first": first,
            "last": last,
            "days": round(self.span_days, 3),
            "notes": self.notes,
        }


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(record: dict[str, Any], key: str) -> Any:
    for name in FIELDS[key]:
        if name in record:
            return record[name]
    return None


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name}: {short(value)} is not a whole number")
    number = float(value)
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise ValueError(f"{name}: {short(value)} is not a whole number >= 0")
    return int(number)


def _status(value: Any) -> int:
    text = str(value).strip().lower()
    http = text.isdigit() and len(text) == 3
    if text in {"ok", "success"} or (http and text.startswith("2")):
        return STATUS_OK
    if text in {"429", "throttled", "resource_exhausted", "rate_limited"}:
        return STATUS_THROTTLED
    if text in {"error", "failed"} or http:
        return STATUS_ERROR
    raise ValueError(f"status: {short(value)} is not ok / error / 429 or an HTTP status code")


def _timestamp(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # epoch seconds or milliseconds
        return int(value * 1000) if value < 1e11 else int(value)
    text = str(value).strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


class _Codes:
    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []

    def __call__(self, value: str) -> int:
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.names)
            self.names.append(value)
        return code


class _Builder(RowCounter):
    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.models = _Codes()
        self.routes = _Codes()
        self.prompts = _Codes()
        self.prefixes = _Codes()
        self.cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "t",
                "model",
                "route",
                "prompt",
                "in",
                "cached",
                "out",
                "latency",
                "status",
                "prefix",
                "ptok",
            )
        }
        self.texts: dict[int, str] = {}
        self.missing: dict[str, int] = {}

    def add(self, line: int, record: dict[str, Any]) -> None:
        self.rows += 1
        for key in REQUIRED:
            if _get(record, key) is None:
                self.missing.setdefault(key, line)
                names = FIELDS[key]
                self.bad.add(line, f"missing field {names[0]!r} (accepted names: {', '.join(names)})")
                return
        try:
            t = _timestamp(_get(record, "timestamp"))
        except (ValueError, TypeError, OverflowError):
            self.bad.add(line, f"timestamp: {short(_get(record, 'timestamp'))} is not ISO 8601 or epoch")
            return
        model = _get(record, "model")
        if not isinstance(model, str) or not model.strip() or not is_name(model):
            self.bad.add(line, "model: empty, not text or holds control characters")
            return
        try:
            tokens_in = _int(_get(record, "input_tokens"), "input_tokens")
            tokens_out = _int(_get(record, "output_tokens"), "output_tokens")
            cached = _int(_get(record, "cached_input_tokens") or 0, "cached_input_tokens")
            latency = float(_get(record, "latency_ms"))
            if not math.isfinite(latency) or latency < 0:
                raise ValueError(f"latency_ms: {short(_get(record, 'latency_ms'))} is not a number >= 0")
            status = _status(_get(record, "status"))
            prefix_tokens = _int(_get(record, "prefix_tokens") or 0, "prefix_tokens")
        except (ValueError, TypeError) as exc:
            message = str(exc)
            if ":" not in message:
                message = f"latency_ms: {short(_get(record, 'latency_ms'))} is not a number"
            self.bad.add(line, message)
            return
        if cached > tokens_in:
            self.bad.add(
                line,
                f"cached_input_tokens ({short(str(cached))}) exceeds input_tokens ({short(str(tokens_in))})",
            )
            return
        route = _get(record, "route")
        if route not in (None, "") and not is_name(str(route)):
            self.bad.add(line, f"route: {short(route)} holds control characters")
            return
        prompt_hash = _get(record, "prompt_hash")
        prompt = _get(record, "prompt")
        prefix_hash = _get(record, "prefix_hash")
        row = len(self.cols["t"])
        if isinstance(prompt, str) and prompt:
            self.texts[row] = prompt
            if not prompt_hash:
                prompt_hash = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()
        c = self.cols
        c["t"].append(t)
        c["model"].append(self.models(model.strip()))
        c["route"].append(self.routes(str(route)) if route not in (None, "") else self.routes(NO_ROUTE))
        c["prompt"].append(self.prompts(str(prompt_hash)) if prompt_hash else -1)
        c["in"].append(tokens_in)
        c["cached"].append(cached)
        c["out"].append(tokens_out)
        c["latency"].append(latency)
        c["status"].append(status)
        c["prefix"].append(self.prefixes(str(prefix_hash)) if prefix_hash and prefix_tokens else -1)
        c["ptok"].append(prefix_tokens if prefix_hash else 0)

    def build(self, max_bad_share: float) -> UsageData:
        if self.rows and self.bad.count == self.rows and len(self.missing) == 1:
            key = next(iter(self.missing))
            names = FIELDS[key]
            raise InputError(
                f"missing column {names[0]!r} (accepted names: {', '.join(names)})", where=self.source
            )
        self.bad.check(self.rows, max_bad_share)
        c = self.cols
        return UsageData(
            t_ms=np.array(c["t"], dtype=np.int64),
            model=np.array(c["model"], dtype=np.int32),
            route=np.array(c["route"], dtype=np.int32),
            prompt=np.array(c["prompt"], dtype=np.int64),
            input_tokens=np.array(c["in"], dtype=np.int64),
            cached_tokens=np.array(c["cached"], dtype=np.int64),
            output_tokens=np.array(c["out"], dtype=np.int64),
            latency_ms=np.array(c["latency"], dtype=np.float64),
            status=np.array(c["status"], dtype=np.int8),
            prefix=np.array(c["prefix"], dtype=np.int64),
            prefix_tokens=np.array(c["ptok"], dtype=np.int64),
            model_names=self.models.names,
            route_names=self.routes.names,
            prefix_names=self.prefixes.names,
            texts=self.texts,
            source=self.source,
            rows=self.rows,
            bad=self.bad,
        )


def read_usage_file(
    path: str | Path, *, max_bad_share: float, max_bytes: int = DEFAULT_MAX_BYTES
) -> UsageData:
    """Read a JSON-lines request log (``.gz`` allowed): a regular file of at most ``max_bytes``
    (decompressed too) in UTF-8; InputError naming the file and line otherwise."""
    builder = _Builder(str(path))
    with open_lines(path, max_bytes=max_bytes) as lines:
        for number, record in json_objects(lines, builder):
            builder.add(number, record)
    return builder.build(max_bad_share)


# ----- Cloud Logging: entries.list over REST (google-auth's AuthorizedSession) -----

ENTRIES_LIST_URL = "https://logging.googleapis.com/v2/entries:list"


class LoggingQueryError(OrchestraError):
    """Cloud Logging refused the query (permission, bad filter): retrying cannot help."""


def logging_filter(settings: LoggingSettings, start: dt.datetime, end: dt.datetime) -> str:
    def stamp(when: dt.datetime) -> str:
        return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return f'({settings.filter}) AND timestamp >= "{stamp(start)}" AND timestamp < "{stamp(end)}"'


def fetch_log_entries(
    settings: LoggingSettings,
    start: dt.datetime,
    end: dt.datetime,
    *,
    session: Any = None,
    url: str = ENTRIES_LIST_URL,
) -> Iterator[dict[str, Any]]:
    """Yield log entries page by page. ``session`` is a ``google.auth.transport.requests.
    AuthorizedSession`` (created from ADC when None; injected in tests); ``url`` is the
    ``entries.list`` endpoint (a local server in tests)."""
    if session is None:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/logging.read"])
        session = AuthorizedSession(credentials)
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{settings.project}"],
        "filter": logging_filter(settings, start, end),
        "orderBy": "timestamp asc",
        "pageSize": settings.page_size,
    }
    seen = 0
    while True:
        response = session.post(url, json=body, timeout=60)
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(f"Cloud Logging entries.list answered HTTP {status}: {response.text[:300]}")
        if status >= 400:
            raise LoggingQueryError(
                f"Cloud Logging entries.list answered HTTP {status} for project {settings.project}: "
                f"{response.text[:300]}"
            )
        page = response.json()
        for entry in page.get("entries", []):
            yield entry
            seen += 1
            if seen >= settings.max_entries:
                return
        token = page.get("nextPageToken")
        if not token:
            return
        body["pageToken"] = token


def usage_from_entries(entries: Iterable[dict[str, Any]], *, source: str, max_bad_share: float) -> UsageData:
    builder = _Builder(source)
    for number, entry in enumerate(entries, start=1):
        payload = entry.get("jsonPayload")
        if not isinstance(payload, dict):
            builder.reject(number, f"entry {short(entry.get('insertId', '?'))}: no jsonPayload")
            continue
        record = dict(payload)
        record.setdefault("timestamp", entry.get("timestamp"))
        builder.add(number, record)
    if builder.rows == 0:
        raise InputError("no AI request entries in the window", where=source)
    return builder.build(max_bad_share)
