"""Who is calling: a Google ID token (on Google Cloud) or a configured bearer token (locally).

- ``ORCHESTRA_API_TOKENS="token1=identity1,token2=identity2"``: static bearer tokens for local use
  and tests, compared in constant time. Identities are recorded as given (e.g. ``user:alice``).
- ``ORCHESTRA_AUDIENCE``: the function's URL (comma-separated when it has several, e.g. the
  cloudfunctions.net and run.app URLs). When set, a bearer token that is not a configured token
  is verified as a Google-signed ID token for that audience and the caller is its ``email``
  claim. Cloud Run has already checked the token for a non-public function, but only the
  verified claims tell us *who* called, which approvals depend on.

With neither configured every request is refused: the API fails closed.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, TransientError
from ..identities import google_auth_request

TOKENS_ENV = "ORCHESTRA_API_TOKENS"
AUDIENCE_ENV = "ORCHESTRA_AUDIENCE"

TokenVerifier = Callable[[str, list[str]], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Identity:
    name: str
    method: str  # "token" or "google"


def parse_tokens(spec: str | None) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for index, raw in enumerate((spec or "").split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        token, sep, identity = entry.partition("=")
        token, identity = token.strip(), identity.strip()
        if not sep or not token or not identity:
            raise ConfigError(
                TOKENS_ENV, [f"entry {index}: expected TOKEN=IDENTITY (entries separated by commas)"]
            )
        if token in tokens:
            raise ConfigError(TOKENS_ENV, [f"entry {index}: the same token is listed twice"])
        tokens[token] = identity
    return tokens


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def verify_google_id_token(token: str, audiences: list[str]) -> Mapping[str, Any] | None:
    """Claims of a valid Google-signed ID token for one of ``audiences``; None when invalid.
    Raises TransientError when Google's certificates cannot be fetched."""
    from google.auth import exceptions as auth_exceptions
    from google.oauth2 import id_token

    try:
        return id_token.verify_oauth2_token(token, google_auth_request(), audience=audiences)
    except auth_exceptions.TransportError as exc:
        raise TransientError(f"cannot fetch Google's token certificates: {exc}") from exc
    except (auth_exceptions.GoogleAuthError, ValueError):
        return None


class Authenticator:
    def __init__(
        self,
        tokens: dict[str, str],
        audiences: list[str],
        verifier: TokenVerifier = verify_google_id_token,
    ) -> None:
        self.tokens = tokens
        self.audiences = audiences
        self.verifier = verifier

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Authenticator:
        env = os.environ if environ is None else environ
        audiences = [a.strip() for a in env.get(AUDIENCE_ENV, "").split(",") if a.strip()]
        return cls(parse_tokens(env.get(TOKENS_ENV)), audiences)

    @property
    def configured(self) -> bool:
        return bool(self.tokens or self.audiences)

    def authenticate(self, authorization: str | None) -> Identity | None:
        token = bearer_token(authorization)
        if token is None:
            return None
        matched: str | None = None
        given = token.encode()
        # Compare against every configured token so timing does not reveal which one matched.
        for candidate, identity in self.tokens.items():
            if hmac.compare_digest(candidate.encode(), given):
                matched = identity
        if matched is not None:
            return Identity(matched, "token")
        if not self.audiences:
            return None
        claims = self.verifier(token, self.audiences)
        if not claims:
            return None
        email = claims.get("email")
        if not email or claims.get("email_verified") is False:
            return None
        return Identity(str(email), "google")
