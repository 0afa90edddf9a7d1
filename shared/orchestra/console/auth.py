"""Who is looking at the console, and proof that a form was posted by the console itself.

Two ways in, never both in one process:

- **Local** (:class:`LocalAuth`): ``orchestra console`` prints a one-time login URL. Its token
  (``secrets.token_urlsafe``) is accepted once, before it expires, and becomes a server-side
  session: the browser holds only a random session id in an HttpOnly, SameSite=Strict cookie.
  The identity is the operator's (``cli_identity``), fixed when the console started.
- **Cloud** (:class:`IapAuth`): the function sits behind Identity-Aware Proxy. The identity
  comes only from the verified ``X-Goog-IAP-JWT-Assertion`` (ES256 signature against IAP's
  keys, audience, issuer, ``exp``/``iat``); headers a caller can set, such as
  ``X-Goog-Authenticated-User-Email``, are never read.

Every state-changing request is a POST carrying a CSRF token compared in constant time. Local
sessions keep a random token each. Behind IAP there is no server-side session (instances come
and go): the token is an HMAC, under a key from Secret Manager, of the IAP subject, so it is
stable for the person's IAP session and cannot be computed by another site.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ..clock import Clock
from ..errors import ConfigError, TransientError
from ..identities import google_auth_request

SESSION_COOKIE = "orchestra_console_session"
IAP_HEADER = "X-Goog-IAP-JWT-Assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
IAP_CERTS_URL = "https://www.gstatic.com/iap/verify/public_key"
AUDIENCE_ENV = "ORCHESTRA_CONSOLE_AUDIENCE"
CSRF_KEY_ENV = "ORCHESTRA_CONSOLE_CSRF_KEY"
CERTS_URL_ENV = "ORCHESTRA_CONSOLE_IAP_CERTS_URL"
MIN_CSRF_KEY_BYTES = 32


class Principal(BaseModel):
    """An authenticated console user for one request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: str = Field(min_length=1, description="recorded with every decision and reset")
    csrf: str = Field(min_length=16, description="the token every POST must carry")
    method: Literal["session", "iap"]


class Headers(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...


class RequestView(Protocol):
    """What authentication reads from a request (a Flask request satisfies it)."""

    @property
    def headers(self) -> Headers: ...

    @property
    def cookies(self) -> Mapping[str, str]: ...


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a posted CSRF token with the principal's."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class Authenticator(Protocol):
    def authenticate(self, request: RequestView) -> Principal | None: ...


# ------------------------------------------------------------------------------------- local


class Session(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity: str
    csrf: str
    expires_at: dt.datetime


class LocalAuth:
    """One-time login tokens and server-side sessions, kept in this process's memory."""

    def __init__(
        self,
        identity: str,
        clock: Clock,
        *,
        token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
        session_ttl: dt.timedelta = dt.timedelta(hours=8),
        login_ttl: dt.timedelta = dt.timedelta(minutes=30),
    ) -> None:
        if not identity.strip():
            raise ValueError("the console needs the operator's identity")
        self.identity = identity.strip()
        self.clock = clock
        self._token = token
        self.session_ttl = session_ttl
        self.login_ttl = login_ttl
        self._lock = threading.Lock()
        self._logins: dict[str, dt.datetime] = {}
        self._sessions: dict[str, Session] = {}

    def issue_login_token(self) -> str:
        """A token for one login, valid for ``login_ttl``."""
        value = self._token()
        with self._lock:
            self._logins[_digest(value)] = self.clock.now() + self.login_ttl
        return value

    def login(self, token: str | None) -> str | None:
        """Consume a login token: the new session's id, or None when the token is unknown, used
        or expired. Tokens are kept as digests, looked up by their digest."""
        if not token:
            return None
        now = self.clock.now()
        with self._lock:
            expires = self._logins.pop(_digest(token), None)
            if expires is None or expires <= now:
                return None
            session_id = self._token()
            self._sessions[_digest(session_id)] = Session(
                identity=self.identity, csrf=self._token(), expires_at=now + self.session_ttl
            )
            self._drop_expired(now)
        return session_id

    def logout(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_digest(session_id), None)

    def authenticate(self, request: RequestView) -> Principal | None:
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            return None
        now = self.clock.now()
        with self._lock:
            session = self._sessions.get(_digest(session_id))
            if session is None:
                return None
            if session.expires_at <= now:
                del self._sessions[_digest(session_id)]
                return None
        return Principal(identity=session.identity, csrf=session.csrf, method="session")

    def _drop_expired(self, now: dt.datetime) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
        for key in [k for k, e in self._logins.items() if e <= now]:
            del self._logins[key]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --------------------------------------------------------------------------------------- IAP


Verifier = Callable[[str, str, str], Mapping[str, Any]]
"""(assertion, audience, certs_url) -> verified claims; raises ValueError when invalid."""


def verify_iap_assertion(assertion: str, audience: str, certs_url: str) -> Mapping[str, Any]:
    """The claims of an IAP assertion whose signature, audience, ``iat`` and ``exp`` check out
    against the keys at ``certs_url``. ValueError when it is not valid; TransientError when the
    keys cannot be fetched."""
    from google.auth import exceptions as auth_exceptions
    from google.oauth2 import id_token

    try:
        return id_token.verify_token(assertion, google_auth_request(), audience=audience, certs_url=certs_url)
    except auth_exceptions.TransportError as exc:
        raise TransientError(f"cannot fetch the IAP signing keys from {certs_url}: {exc}") from exc
    except auth_exceptions.GoogleAuthError as exc:
        raise ValueError(str(exc)) from exc


class IapAuth:
    """The identity Identity-Aware Proxy verified, from its signed assertion only."""

    def __init__(
        self,
        audience: str,
        csrf_key: bytes,
        *,
        certs_url: str = IAP_CERTS_URL,
        verifier: Verifier = verify_iap_assertion,
    ) -> None:
        if not audience.strip():
            raise ConfigError(AUDIENCE_ENV, ["the IAP audience is required (/projects/NUMBER/...)"])
        if len(csrf_key) < MIN_CSRF_KEY_BYTES:
            raise ConfigError(
                CSRF_KEY_ENV, [f"the CSRF key must be at least {MIN_CSRF_KEY_BYTES} bytes of random data"]
            )
        self.audience = audience.strip()
        self.csrf_key = csrf_key
        self.certs_url = certs_url
        self.verifier = verifier

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IapAuth:
        problems: list[str] = []
        audience = environ.get(AUDIENCE_ENV, "").strip()
        key = environ.get(CSRF_KEY_ENV, "").strip()
        if not audience:
            problems.append(
                f"{AUDIENCE_ENV}: not set; accepted: /projects/NUMBER/locations/REGION/services/NAME"
            )
        if len(key.encode()) < MIN_CSRF_KEY_BYTES:
            problems.append(f"{CSRF_KEY_ENV}: missing or shorter than {MIN_CSRF_KEY_BYTES} bytes")
        if problems:
            raise ConfigError("console environment", problems)
        return cls(audience, key.encode(), certs_url=environ.get(CERTS_URL_ENV) or IAP_CERTS_URL)

    def authenticate(self, request: RequestView) -> Principal | None:
        assertion = request.headers.get(IAP_HEADER)
        if not assertion or not isinstance(assertion, str):
            return None
        try:
            claims = self.verifier(assertion, self.audience, self.certs_url)
        except ValueError:
            return None
        if claims.get("iss") != IAP_ISSUER:
            return None
        email, subject = claims.get("email"), claims.get("sub")
        if not isinstance(email, str) or not email or not isinstance(subject, str) or not subject:
            return None
        # IAP prefixes identities of some kinds ("accounts.google.com:alice@example.com").
        identity = email.rpartition(":")[2]
        token = hmac.new(self.csrf_key, f"csrf\x00{subject}".encode(), hashlib.sha256).hexdigest()
        return Principal(identity=identity, csrf=token, method="iap")
