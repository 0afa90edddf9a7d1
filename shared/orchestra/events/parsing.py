"""Decoding what callers send: JSON text and pydantic models, as InputError naming the field.

Every entry point (HTTP bodies, Pub/Sub message data and attributes, stored dead letters) goes
through these, so a payload is refused with the same words wherever it arrives, and nothing a
caller sends can raise anything but InputError: a JSON document nested beyond the parser's
recursion limit is a bad payload, not a crash that would turn into a 500 or a redelivery loop.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..config import format_errors
from ..errors import InputError

M = TypeVar("M", bound=BaseModel)


def json_value(raw: bytes | str, *, where: str) -> Any:
    """Any JSON value; ``raw`` must not be blank."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text; expected a JSON object", where=where) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"is not a JSON object: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            where=where,
        ) from None
    except RecursionError:
        raise InputError("is nested too deep to parse; expected a JSON object", where=where) from None


def json_object(raw: bytes | str, *, where: str, allow_empty: bool = False) -> dict[str, Any]:
    """A JSON object; blank text is ``{}`` when ``allow_empty``."""
    if not raw.strip():
        if allow_empty:
            return {}
        raise InputError("is empty; expected a JSON object", where=where)
    value = json_value(raw, where=where)
    if not isinstance(value, dict):
        raise InputError(f"is a JSON {type(value).__name__}; expected an object", where=where)
    return value


def first_error_field(exc: ValidationError, prefix: str = "") -> str | None:
    loc = ".".join(str(p) for p in exc.errors()[0]["loc"])
    return ".".join(p for p in (prefix, loc) if p) or None


def validated(model: type[M], data: Any, *, prefix: str = "", context: dict[str, Any] | None = None) -> M:
    """``data`` as ``model``; InputError listing every problem, ``where`` the first field.
    ``context`` is pydantic's validation context (e.g. which local files a trigger may name)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise InputError(
            "; ".join(format_errors(exc, prefix=prefix)), where=first_error_field(exc, prefix)
        ) from None
