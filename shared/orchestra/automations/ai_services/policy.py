"""The routing and caching policy file that ai-services apply writes.

Schema (YAML, version 1), read by the application's AI gateway / client wrapper::

    version: 1
    updated_at: 2025-03-18T06:00:00Z      # set on every write
    response_cache:                        # serve an identical prompt's earlier answer
      - {route: faq, model: gemini-2.5-flash, match: exact-prompt, ttl_seconds: 3600}
    context_cache:                         # cache a shared prompt prefix with the provider
      - {model: gemini-2.5-pro, prefix_hash: kb-v12, prefix_tokens: 6200,
         routes: [support-chat], ttl_seconds: 3600}
    routing:                               # send a route's small requests to a cheaper model
      - {route: classify-ticket, from_model: gemini-2.5-pro, to_model: gemini-2.5-flash,
         max_input_tokens: 2000, max_output_tokens: 300}
    backoff:                               # retry 429s with capped, full-jitter exponential backoff
      - {model: gemini-2.5-pro, max_attempts: 3, initial_seconds: 1.0, max_seconds: 32.0,
         jitter: full, respect_retry_after: true}

Entries are keyed: response_cache by (route, model), context_cache by (model, prefix_hash),
routing by (route, from_model), backoff by model. Applying an entry replaces the entry with the
same key; everything else in the file is kept.

The file is read like any input (a regular UTF-8 file of at most 256 KiB, parsed by the safe
loader); a broken file is refused with its line and column, quoting it only through ``excerpt``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...actuators.cloud_run_yaml import load_document
from ...automation import Verification
from ...errors import InputError
from ...inputs import excerpt
from ...models import Action
from ...toolkit import filestate


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseCacheEntry(_Entry):
    route: str
    model: str
    match: Literal["exact-prompt"] = "exact-prompt"
    ttl_seconds: int = Field(gt=0)


class ContextCacheEntry(_Entry):
    model: str
    prefix_hash: str
    prefix_tokens: int = Field(gt=0)
    routes: list[str] = Field(default_factory=list)
    ttl_seconds: int = Field(gt=0)


class RoutingEntry(_Entry):
    route: str
    from_model: str
    to_model: str
    max_input_tokens: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)


class BackoffEntry(_Entry):
    model: str
    max_attempts: int = Field(ge=1, le=10)
    initial_seconds: float = Field(gt=0)
    max_seconds: float = Field(gt=0)
    jitter: Literal["full", "equal", "none"] = "full"
    respect_retry_after: bool = True


class PolicyDocument(_Entry):
    version: Literal[1] = 1
    updated_at: str | None = None
    response_cache: list[ResponseCacheEntry] = Field(default_factory=list)
    context_cache: list[ContextCacheEntry] = Field(default_factory=list)
    routing: list[RoutingEntry] = Field(default_factory=list)
    backoff: list[BackoffEntry] = Field(default_factory=list)


# action kind -> (document section, the fields that key an entry, the entry model)
SECTIONS: dict[str, tuple[str, tuple[str, ...], type[_Entry]]] = {
    "response-cache": ("response_cache", ("route", "model"), ResponseCacheEntry),
    "context-cache": ("context_cache", ("model", "prefix_hash"), ContextCacheEntry),
    "routing": ("routing", ("route", "from_model"), RoutingEntry),
    "backoff": ("backoff", ("model",), BackoffEntry),
}
HEADER = (
    "# AI routing and caching policy, written by `orchestra run ai-services --mode apply`.\n"
    "# Schema: orchestra/automations/ai_services/policy.py (version 1). Manual edits are kept.\n"
)


def parse(text: str | None, where: str) -> PolicyDocument:
    if text is None or not text.strip():
        return PolicyDocument()
    data = load_document(text, where)  # InputError naming the line and column
    try:
        return PolicyDocument.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{_location(err['loc'])}: {err['msg']}" for err in exc.errors()[:5])
        raise InputError(f"policy file does not match schema version 1: {problems}", where=where) from None


def _location(loc: tuple[int | str, ...]) -> str:
    """A schema error's field path; keys that come from the file are quoted as excerpts."""
    parts = [
        str(p) if isinstance(p, int) or (p.isidentifier() and p.isascii() and len(p) <= 40) else excerpt(p)
        for p in loc
    ]
    return ".".join(parts) or "(top)"


def dump(doc: PolicyDocument) -> str:
    return HEADER + yaml.safe_dump(doc.model_dump(mode="json"), sort_keys=False)


def _find(doc: PolicyDocument, kind: str, key: dict[str, Any]) -> tuple[list[Any], int | None]:
    section, fields, _ = SECTIONS[kind]
    entries = getattr(doc, section)
    for i, entry in enumerate(entries):
        if all(getattr(entry, f) == key[f] for f in fields):
            return entries, i
    return entries, None


def _set(doc: PolicyDocument, kind: str, key: dict[str, Any], entry: dict[str, Any] | None) -> None:
    model = SECTIONS[kind][2]
    entries, index = _find(doc, kind, key)
    if entry is None:
        if index is not None:
            entries.pop(index)
    elif index is None:
        entries.append(model.model_validate(entry))
    else:
        entries[index] = model.model_validate(entry)


def _path(action: Action) -> str:
    return action.params["policy_path"]


def prepare(action: Action) -> dict[str, Any]:
    path = _path(action)
    before = filestate.snapshot(path)
    doc = parse(before["content"], path)  # refuse to build on a broken file
    entries, index = _find(doc, action.params["kind"], action.params["key"])
    before["entry"] = entries[index].model_dump(mode="json") if index is not None else None
    return before


def apply(action: Action, *, now: dt.datetime) -> dict[str, Any]:
    path = _path(action)
    doc = parse(filestate.read_or_none(path), path)
    _set(doc, action.params["kind"], action.params["key"], action.params["entry"])
    doc.updated_at = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    written = filestate.atomic_write(path, dump(doc))
    return {"policy_path": path, "written_sha256": written}


def verify(action: Action) -> Verification:
    path = _path(action)
    text = filestate.read_or_none(path)
    if text is None:
        return Verification(ok=False, evidence={"policy_path": path, "problem": "file missing"})
    try:
        doc = parse(text, path)
    except InputError as exc:
        return Verification(ok=False, evidence={"policy_path": path, "problem": str(exc)})
    entries, index = _find(doc, action.params["kind"], action.params["key"])
    found = entries[index].model_dump(mode="json") if index is not None else None
    section, _, model = SECTIONS[action.params["kind"]]
    wanted = model.model_validate(action.params["entry"]).model_dump(mode="json") if found else None
    ok = found is not None and found == wanted
    return Verification(ok=ok, evidence={"policy_path": path, "section": section, "entry": found})


def rollback(action: Action) -> None:
    before = action.rollback or {}
    if not before.get("path"):
        return
    path = before["path"]

    def revert(current: str) -> str | None:
        doc = parse(current, path)
        _set(doc, action.params["kind"], action.params["key"], before.get("entry"))
        empty = not (doc.response_cache or doc.context_cache or doc.routing or doc.backoff)
        if empty and not before.get("existed"):
            return None
        return dump(doc)

    outcome = filestate.restore(before, (action.result or {}).get("written_sha256"), revert)
    action.result = {**(action.result or {}), "rollback": outcome}


def resolve_policy_path(params_path: str | None, settings_path: str) -> str:
    return str(Path(params_path or settings_path).resolve())
