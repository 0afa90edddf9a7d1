"""People behind identities: who requested something, who may approve it.

An identity is a string naming an account in some namespace:

- ``github:<login>`` — a GitHub login or the ``pusher.name`` of a push;
- an e-mail — a Google account (ID token or IAP ``email`` claim, the CLI's Google credentials) or a
  push's ``pusher.email``. ``email:``, ``user:``, ``google:``, ``serviceAccount:`` and ``mailto:``
  in front of an e-mail are the same e-mail;
- ``user:<name>`` — a local account (the CLI against the local SQLite store, static API tokens);
- anything else (``pubsub:…``, ``alert:…``, ``automation:…``) — a machine.

Identities are compared after normalisation only: surrounding space removed and everything case
folded (e-mails and GitHub logins are case-insensitive; folding the rest can only make two
identities *more* alike, which for four eyes is the safe direction). Names in different namespaces
are different identities: ``github:alice`` and ``user:alice`` are *not* the same person, and
neither is ``alice@corp.example``, unless the configuration links them::

    identities:
      github:alice: alice@corp.example     # GitHub login or pusher name -> the person's e-mail
      user:alice: alice@corp.example       # local account -> the same person

In production every GitHub identity that pushes must be mapped to its owner's Google e-mail:
otherwise a pusher approving with their Google account is not recognised as the pusher.

A requester may carry several identities (a push carries ``pusher.name``, ``pusher.email`` and
``sender.login``): :func:`same_person` refuses an approver who is any of them, directly or through
the mapping. :func:`may_approve` applies an environment's ``approvers`` list (e-mails and
``group:<e-mail>`` entries, members from ``groups``).

:func:`google_account` tells which Google account the CLI's credentials belong to, and
:func:`cli_identity` decides who a CLI command acts as: against Firestore that account and nothing
else; ``--as`` is free only against the local SQLite store.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .config import GROUP_PREFIX
from .errors import ApprovalRefused, InputError, TransientError

if TYPE_CHECKING:
    from .config import Config
    from .models import Run
    from .store.base import StateStore

EMAIL_NAMESPACES = frozenset({"email", "user", "google", "serviceaccount", "mailto"})
GITHUB = "github"
TOKENINFO_URL = "https://oauth2.googleapis.com/tokeninfo"
# Compute Engine credentials name their account "default" until refreshed.
UNRESOLVED_ACCOUNTS = frozenset({"", "default"})


# ----------------------------------------------------------------------------- identities


def is_email(value: str) -> bool:
    local, sep, domain = value.strip().rpartition("@")
    return bool(sep and local and domain and ":" not in local and " " not in value.strip())


def normalise(identity: str) -> str:
    """The form identities are compared in: e-mails bare and lower-case, ``namespace:name``
    lower-case. An empty or blank identity is ``""`` (which denotes nobody)."""
    text = identity.strip()
    namespace, sep, name = text.partition(":")
    if sep and namespace.strip().lower() in EMAIL_NAMESPACES and is_email(name):
        return name.strip().lower()
    if sep and not is_email(text):
        return f"{namespace.strip().lower()}:{name.strip().lower()}"
    return text.lower()


class Requester(BaseModel):
    """Everyone a request came from: one identity shown (``display``) and every identity that
    must not approve it (``identities``, the displayed one included)."""

    model_config = ConfigDict(extra="forbid")

    display: str = Field(min_length=1)
    identities: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, display: str, *others: str | None) -> Requester:
        seen: dict[str, str] = {}
        for identity in (display, *others):
            if identity and normalise(identity) and normalise(identity) not in seen:
                seen[normalise(identity)] = identity.strip()
        return cls(display=display, identities=list(seen.values()))

    @classmethod
    def from_push(cls, pusher_name: str, pusher_email: str | None, sender_login: str | None) -> Requester:
        """A GitHub push: the pusher's name (shown), the pusher's e-mail and the sender's login."""
        return cls.of(
            f"{GITHUB}:{pusher_name.strip()}",
            pusher_email.strip() if pusher_email and is_email(pusher_email) else None,
            f"{GITHUB}:{sender_login.strip()}" if sender_login and sender_login.strip() else None,
        )

    def all(self) -> list[str]:
        return self.identities or [self.display]


def run_requester(run: Run, waiting_only: bool = True) -> Requester:
    """Who a run's approval must not come from: the run's requester and, for actions that carry
    their own (``params.requester_identities``, e.g. a deployment's pusher), theirs too."""
    from .models import ActionStatus

    others: list[str] = []
    for action in run.actions:
        if waiting_only and action.status != ActionStatus.awaiting_approval:
            continue
        listed = action.params.get("requester_identities")
        if isinstance(listed, list):
            others.extend(str(item) for item in listed if isinstance(item, str))
    return Requester.of(run.requested_by, *others)


def _mapping(config: Config) -> dict[str, str]:
    return {normalise(key): normalise(email) for key, email in config.identities.items()}


def people(identity: str, config: Config) -> frozenset[str]:
    """Every normalised identity ``identity`` stands for: itself and, following ``identities``
    (chains included), the e-mails it is mapped to."""
    mapping = _mapping(config)
    found: set[str] = set()
    todo = [normalise(identity)]
    while todo:
        current = todo.pop()
        if not current or current in found:
            continue
        found.add(current)
        if current in mapping:
            todo.append(mapping[current])
    return frozenset(found)


def matching_identity(requester_identities: Iterable[str], approver: str, config: Config) -> str | None:
    """The requester identity that is the same person as ``approver``, or None."""
    approver_people = people(approver, config)
    if not approver_people:
        return None
    for identity in requester_identities:
        if people(identity, config) & approver_people:
            return identity
    return None


def same_person(requester_identities: Iterable[str], approver: str, config: Config) -> bool:
    """True when ``approver`` is any identity of the requester, directly or through
    ``identities`` (in either direction: both sides are resolved to people)."""
    return matching_identity(requester_identities, approver, config) is not None


def _group_members(group: str, groups: Mapping[str, list[str]], seen: set[str]) -> set[str]:
    key = normalise(group)
    if key in seen:
        return set()
    seen.add(key)
    members: set[str] = set()
    for name, listed in groups.items():
        if normalise(name) != key:
            continue
        for member in listed:
            if member.strip().startswith(GROUP_PREFIX):
                members |= _group_members(member.strip()[len(GROUP_PREFIX) :], groups, seen)
            else:
                members.add(normalise(member))
    return members


def allowed_approvers(environment: str, config: Config) -> frozenset[str] | None:
    """The normalised people who may approve in ``environment``; None when anyone may."""
    env = config.environments.get(environment)
    if env is None or env.approvers is None:
        return None
    allowed: set[str] = set()
    for entry in env.approvers:
        text = entry.strip()
        if text.startswith(GROUP_PREFIX):
            allowed |= _group_members(text[len(GROUP_PREFIX) :], config.groups, set())
        else:
            allowed.add(normalise(text))
    return frozenset(allowed)


def may_approve(approver: str, environment: str, config: Config) -> bool:
    """Whether ``approver`` is on ``environments.<environment>.approvers`` (as a person, directly
    or through ``identities``, or as a member of a listed group). True when no list is set."""
    allowed = allowed_approvers(environment, config)
    if allowed is None:
        return True
    return bool(people(approver, config) & allowed)


def approval_problem(
    approver: str, requester: Requester, environment: str, config: Config, *, subject: str
) -> str | None:
    """Why ``approver`` may not approve ``subject`` (a run or a deployment), or None."""
    if not normalise(approver):
        return "an approver identity is required"
    matched = matching_identity(requester.all(), approver, config)
    if matched is not None:
        how = "" if normalise(matched) == normalise(approver) else f" (linked to {matched} in identities)"
        return (
            f"{approver!r} is the requester of {subject} ({requester.display}){how}; "
            "approval must come from another identity: someone else, not the same person"
        )
    if not may_approve(approver, environment, config):
        env = config.environments[environment]
        listed = ", ".join(env.approvers or []) or "nobody"
        return (
            f"{approver!r} may not approve in {environment}: environments.{environment}.approvers "
            f"allows {listed}"
        )
    return None


def check_approver(
    approver: str, requester: Requester, environment: str, config: Config, *, subject: str
) -> None:
    """Raise ApprovalRefused (field ``approver``) unless ``approver`` may approve ``subject``."""
    problem = approval_problem(approver, requester, environment, config, subject=subject)
    if problem:
        raise ApprovalRefused(problem, where="approver")


def may_decline(approver: str, requester: Requester, environment: str, config: Config) -> bool:
    """Rejecting or cancelling: the requester may withdraw their own request; otherwise only
    someone who may approve in the environment may turn it down."""
    if not normalise(approver):
        return False
    return same_person(requester.all(), approver, config) or may_approve(approver, environment, config)


def check_decliner(
    approver: str, requester: Requester, environment: str, config: Config, *, subject: str, verb: str
) -> None:
    if may_decline(approver, requester, environment, config):
        return
    if not normalise(approver):
        raise ApprovalRefused("an identity is required", where="approver")
    env = config.environments[environment]
    raise ApprovalRefused(
        f"{approver!r} may not {verb} {subject}: only its requester ({requester.display}) or someone "
        f"environments.{environment}.approvers allows ({', '.join(env.approvers or []) or 'nobody'})",
        where="approver",
    )


# ----------------------------------------------------------------------------- Google accounts


class HttpResponse(Protocol):
    status: int
    data: bytes


class Transport(Protocol):
    """google-auth's transport (``google.auth.transport.requests.Request``)."""

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> HttpResponse: ...


CredentialsLoader = Callable[[], Any]


def default_credentials() -> Any:
    """Application Default Credentials, as every Google client library finds them."""
    import google.auth
    from google.auth import exceptions as auth_exceptions

    try:
        credentials, _project = google.auth.default(
            scopes=["openid", "https://www.googleapis.com/auth/userinfo.email"]
        )
    except auth_exceptions.DefaultCredentialsError:
        raise InputError(
            "no Google credentials found: run `gcloud auth application-default login` or set "
            "GOOGLE_APPLICATION_CREDENTIALS; against a Firestore store the CLI acts as that account",
            where="credentials",
        ) from None
    return credentials


def default_transport() -> Transport:
    from google.auth.transport import requests as auth_requests

    return auth_requests.Request()  # type: ignore[return-value]


def _service_account(credentials: Any) -> str | None:
    email = getattr(credentials, "service_account_email", None)
    if isinstance(email, str) and email.strip() not in UNRESOLVED_ACCOUNTS and is_email(email):
        return email.strip()
    return None


def _tokeninfo(transport: Transport, kind: str, token: str) -> str:
    """Ask Google whose ``kind`` (id_token / access_token) this is: Google checks the token, so a
    credentials file that points its token endpoint elsewhere cannot name someone else."""
    from google.auth import exceptions as auth_exceptions

    url = f"{TOKENINFO_URL}?{urllib.parse.urlencode({kind: token})}"
    try:
        response = transport(url=url, method="GET", timeout=30)
    except auth_exceptions.TransportError as exc:
        raise TransientError(f"cannot reach Google to confirm the account ({type(exc).__name__})") from None
    if response.status >= 500:
        raise TransientError(f"Google's token info endpoint answered {response.status}")
    try:
        claims = json.loads(response.data or b"{}")
    except ValueError:
        claims = None
    if response.status != 200 or not isinstance(claims, dict):
        raise InputError(
            f"Google did not accept the credentials' {kind.replace('_', ' ')} (HTTP {response.status}); "
            "log in again with `gcloud auth application-default login`",
            where="credentials",
        )
    email = claims.get("email")
    if (
        not isinstance(email, str)
        or not is_email(email)
        or str(claims.get("email_verified")).lower() == "false"
    ):
        raise InputError(
            "the credentials carry no verified e-mail: log in with the userinfo.email scope "
            "(`gcloud auth application-default login` does) or use a service account",
            where="credentials",
        )
    return email.strip()


def google_account(
    credentials_loader: CredentialsLoader | None = None,
    transport_factory: Callable[[], Transport] | None = None,
) -> str:
    """The e-mail of the Google account the CLI's credentials belong to.

    Service accounts (key files, impersonation, the metadata server) name themselves in
    ``service_account_email``; Compute Engine's credentials only after a refresh. User credentials
    are refreshed and their ID token (else their access token) is checked by Google's token info
    endpoint, which answers with the account's verified e-mail.
    """
    from google.auth import exceptions as auth_exceptions

    credentials = (credentials_loader or default_credentials)()
    email = _service_account(credentials)
    if email:
        return email
    transport = (transport_factory or default_transport)()
    try:
        if not getattr(credentials, "valid", False) or not getattr(credentials, "id_token", None):
            credentials.refresh(transport)
    except auth_exceptions.TransportError as exc:
        raise TransientError(
            f"cannot reach Google to refresh the credentials ({type(exc).__name__})"
        ) from None
    except auth_exceptions.RefreshError:
        raise InputError(
            "the Google credentials could not be refreshed (expired or revoked): "
            "run `gcloud auth application-default login` again",
            where="credentials",
        ) from None
    email = _service_account(credentials)
    if email:
        return email
    id_token = getattr(credentials, "id_token", None)
    if isinstance(id_token, str) and id_token:
        return _tokeninfo(transport, "id_token", id_token)
    token = getattr(credentials, "token", None)
    if isinstance(token, str) and token:
        return _tokeninfo(transport, "access_token", token)
    raise InputError(
        f"cannot tell which Google account {type(credentials).__name__} credentials belong to",
        where="credentials",
    )


_google_request: Any = None
_google_lock = threading.Lock()


def google_auth_request() -> Any:
    """The google-auth transport this process verifies Google-signed tokens with: one per
    instance, so its connection pool and the fetched signing keys are reused between requests."""
    global _google_request
    from google.auth.transport import requests as auth_requests

    with _google_lock:
        if _google_request is None:
            _google_request = auth_requests.Request()
        return _google_request


def is_local_store(store: StateStore) -> bool:
    """The local SQLite file, or Firestore served by the emulator (``FIRESTORE_EMULATOR_HOST`` set,
    as under ``make dev``): the emulator has no Google accounts, and its data stays on this
    machine (the client talks to nothing else while the variable is set)."""
    from .store.sqlite import SqliteStateStore

    return isinstance(store, SqliteStateStore) or getattr(store, "emulated", False) is True


def cli_identity(
    store: StateStore | None,
    given: str | None,
    *,
    local_user: Callable[[], str],
    account: Callable[[], str] | None = None,
    option: str = "--as",
) -> str:
    """Who a CLI command acts as.

    Against the local SQLite store, the Firestore emulator (:func:`is_local_store`), or when no
    store is involved: ``given`` (``--as``) or the local user. Against any other store
    (Firestore): the Google account of the credentials in use; ``given`` must then name that same
    account, else InputError (exit code 2) — a shared store records who really acted.
    """
    if store is None or is_local_store(store):
        return given.strip() if given and given.strip() else local_user()
    email = (account or google_account)()
    if given and given.strip() and normalise(given) != normalise(email):
        raise InputError(
            f"{given.strip()!r} is not the Google account in use ({email}): against a Firestore "
            f"store the CLI acts as the account of its credentials; {option} is accepted only with "
            "the local SQLite store or when it names that account",
            where=option,
        )
    return email
