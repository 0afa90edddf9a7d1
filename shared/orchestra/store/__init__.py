"""State store selection: ``ORCHESTRA_STORE=sqlite:///path`` or ``firestore://PROJECT[/DATABASE]``."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from ..errors import StoreConfigError
from .base import StateStore

STORE_ENV_VAR = "ORCHESTRA_STORE"
ACCEPTED = "sqlite:///RELATIVE/PATH, sqlite:////ABSOLUTE/PATH or firestore://PROJECT[/DATABASE]"


def open_store(url: str) -> StateStore:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        if parsed.netloc:
            raise StoreConfigError(f"store URL {url!r}: use three slashes; accepted: {ACCEPTED}")
        path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
        if not path:
            raise StoreConfigError(f"store URL {url!r} has no file path; accepted: {ACCEPTED}")
        from .sqlite import SqliteStateStore

        return SqliteStateStore(path)
    if parsed.scheme == "firestore":
        project = parsed.netloc
        database = parsed.path.strip("/") or "(default)"
        if not project:
            raise StoreConfigError(f"store URL {url!r} has no project; accepted: {ACCEPTED}")
        from .firestore import FirestoreStateStore

        return FirestoreStateStore(project=project, database=database)
    raise StoreConfigError(f"unsupported store URL {url!r}; accepted: {ACCEPTED}")


def store_url(configured: str) -> str:
    return os.environ.get(STORE_ENV_VAR) or configured


__all__ = ["STORE_ENV_VAR", "StateStore", "open_store", "store_url"]
