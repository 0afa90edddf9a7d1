"""``orchestra.identities``: people behind identities, approvers, and the Google account of the CLI's
credentials (real google-auth credential classes over a recorded-shape fake transport)."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from orchestra.config import parse_config
from orchestra.errors import ApprovalRefused, InputError, TransientError
from orchestra.identities import (
    TOKENINFO_URL,
    Requester,
    check_approver,
    cli_identity,
    google_account,
    may_approve,
    normalise,
    people,
    same_person,
)
from orchestra.store.sqlite import SqliteStateStore

CONFIG = parse_config(
    """
environments:
  development: {}
  staging: {approvers: [carol@corp.example]}
  production: {protected: true, approvers: ["group:release@corp.example", dan@corp.example]}
identities:
  github:alice: alice@corp.example
  user:alice: alice@corp.example
  email:alice@users.noreply.github.com: alice@corp.example
  github:bob: Bob@Corp.Example
groups:
  release@corp.example: [bob@corp.example, "group:oncall@corp.example"]
  oncall@corp.example: [erin@corp.example]
""",
    "identities-test",
)
PUSH = Requester.from_push("alice", "alice.personal@example.com", "alice-ci")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  GitHub:Alice ", "github:alice"),
        ("Alice@Corp.Example", "alice@corp.example"),
        ("user:Alice@Corp.Example", "alice@corp.example"),
        ("serviceAccount:CI@p.iam.gserviceaccount.com", "ci@p.iam.gserviceaccount.com"),
        ("email:a@b.c", "a@b.c"),
        ("user:alice", "user:alice"),
        ("github:alice@corp.example", "github:alice@corp.example"),
        ("   ", ""),
    ],
)
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_a_push_records_every_identity_it_carries():
    assert PUSH.display == "github:alice"
    assert PUSH.identities == ["github:alice", "alice.personal@example.com", "github:alice-ci"]
    same = Requester.from_push("Alice", "not an e-mail", "ALICE")
    assert same.identities == ["github:Alice"]  # duplicates and non-e-mails dropped


@pytest.mark.parametrize(
    ("approver", "same"),
    [
        ("github:alice", True),  # pusher name
        ("GITHUB:ALICE", True),  # logins are case-insensitive
        ("alice.personal@example.com", True),  # pusher e-mail
        ("github:alice-ci", True),  # sender login
        ("alice@corp.example", True),  # mapped
        ("user:alice", True),  # mapped to the same e-mail
        ("user:alice-ci", False),  # unmapped local name: a different identity
        ("alice", False),  # a bare name is not any namespace's identity
        ("bob@corp.example", False),
        ("", False),
    ],
)
def test_same_person_matches_any_identity_directly_or_through_the_mapping(approver, same):
    assert same_person(PUSH.identities, approver, CONFIG) is same


def test_the_mapping_works_both_ways_and_follows_chains():
    noreply = Requester.of("alice@users.noreply.github.com")
    assert same_person(noreply.all(), "github:alice", CONFIG)  # both are alice@corp.example
    assert "alice@corp.example" in people("user:alice", CONFIG)
    assert same_person(["github:bob"], "bob@corp.example", CONFIG)  # mapped e-mail, any case
    unmapped = parse_config("environments: {development: {}}", "bare")
    assert not same_person(["github:alice"], "user:alice", unmapped)  # namespaces are not stripped


@pytest.mark.parametrize(
    ("approver", "environment", "allowed"),
    [
        ("bob@corp.example", "production", True),  # member of a listed group
        ("erin@corp.example", "production", True),  # member of a group inside it
        ("github:bob", "production", True),  # mapped to a member
        ("DAN@corp.example", "production", True),  # listed person
        ("carol@corp.example", "production", False),
        ("user:root", "production", False),
        ("carol@corp.example", "staging", True),
        ("bob@corp.example", "staging", False),
        ("anyone@else.example", "development", True),  # no list: anyone but the requester
    ],
)
def test_may_approve(approver, environment, allowed):
    assert may_approve(approver, environment, CONFIG) is allowed


def test_refusals_say_why_and_never_include_more_than_identities():
    with pytest.raises(ApprovalRefused, match="linked to github:alice in identities") as exc:
        check_approver("alice@corp.example", PUSH, "production", CONFIG, subject="deployment d")
    assert exc.value.where == "approver"
    with pytest.raises(ApprovalRefused, match=r"production: environments\.production\.approvers allows"):
        check_approver("carol@corp.example", PUSH, "production", CONFIG, subject="deployment d")
    with pytest.raises(ApprovalRefused, match="an approver identity is required"):
        check_approver("  ", PUSH, "production", CONFIG, subject="deployment d")
    check_approver("bob@corp.example", PUSH, "production", CONFIG, subject="deployment d")


# ----------------------------------------------------------------------------- Google accounts


@dataclass
class Response:
    status: int
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Transport:
    """google-auth's transport interface, answering as Google's endpoints do (recorded shapes)."""

    routes: dict[str, tuple[int, dict[str, Any]]]
    calls: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **_: Any):
        parsed = urllib.parse.urlsplit(url)
        base = f"{parsed.scheme}://{parsed.netloc}{parsed.path}"
        query = urllib.parse.parse_qs(parsed.query)
        if body:
            query.update(urllib.parse.parse_qs(body.decode() if isinstance(body, bytes) else body))
        self.calls.append((method, base, query))
        if base not in self.routes:
            raise auth_exceptions.TransportError(f"unexpected request to {base}")
        status, payload = self.routes[base]
        return Response(status, json.dumps(payload).encode(), {"content-type": "application/json"})


GCLOUD_CLIENT = "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
ID_TOKEN = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyIsInR5cCI6IkpXVCJ9.eyJlbWFpbCI6ImFsaWNlQGNvcnAuZXhhbXBsZSJ9.c2ln"
)
REFRESHED = {
    "access_token": "ya29.a0-access-token",
    "expires_in": 3599,
    "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/cloud-platform",
    "token_type": "Bearer",
    "id_token": ID_TOKEN,
}
ID_TOKENINFO = {
    "iss": "https://accounts.google.com",
    "azp": GCLOUD_CLIENT,
    "aud": GCLOUD_CLIENT,
    "sub": "110169484474386276334",
    "email": "Alice@corp.example",
    "email_verified": "true",
    "at_hash": "mmZ5m7YyZq2nmpU1x3P0Kg",
    "iat": "1767614400",
    "exp": "1767618000",
    "alg": "RS256",
    "kid": "123",
    "typ": "JWT",
}


def adc_user() -> user_credentials.Credentials:
    """What `gcloud auth application-default login` leaves: a refresh token, no access token."""
    return user_credentials.Credentials.from_authorized_user_info(
        {
            "client_id": GCLOUD_CLIENT,
            "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty",
            "refresh_token": "1//0g-refresh-token",
            "type": "authorized_user",
        }
    )


def test_user_credentials_are_refreshed_and_google_confirms_the_id_token():
    transport = Transport({TOKEN_URL: (200, REFRESHED), TOKENINFO_URL: (200, ID_TOKENINFO)})
    assert google_account(lambda: adc_user(), lambda: transport) == "Alice@corp.example"
    (refresh, info) = transport.calls
    assert refresh[:2] == ("POST", TOKEN_URL) and refresh[2]["grant_type"] == ["refresh_token"]
    assert info == ("GET", TOKENINFO_URL, {"id_token": [ID_TOKEN]})


def test_without_an_id_token_the_access_token_is_asked_about():
    no_id = {k: v for k, v in REFRESHED.items() if k != "id_token"}
    access_info = {
        "azp": GCLOUD_CLIENT,
        "aud": GCLOUD_CLIENT,
        "sub": "110169484474386276334",
        "scope": no_id["scope"],
        "exp": "1767618000",
        "expires_in": "3599",
        "email": "alice@corp.example",
        "email_verified": "true",
        "access_type": "offline",
    }
    transport = Transport({TOKEN_URL: (200, no_id), TOKENINFO_URL: (200, access_info)})
    assert google_account(lambda: adc_user(), lambda: transport) == "alice@corp.example"
    assert transport.calls[-1][2] == {"access_token": ["ya29.a0-access-token"]}


def test_a_token_endpoint_of_ones_own_cannot_name_someone_else():
    rogue = "https://tokens.attacker.example/token"
    forged = {**REFRESHED, "id_token": "forged.id.token"}
    transport = Transport(
        {
            rogue: (200, forged),
            TOKENINFO_URL: (400, {"error": "invalid_token", "error_description": "Invalid Value"}),
        }
    )
    own = user_credentials.Credentials(
        None, refresh_token="1//0g-refresh-token", token_uri=rogue, client_id="x", client_secret="y"
    )
    with pytest.raises(InputError, match="Google did not accept the credentials' id token") as exc:
        google_account(lambda: own, lambda: transport)
    assert "forged" not in str(exc.value)  # tokens are never echoed
    assert transport.calls[-1][1] == TOKENINFO_URL


@pytest.mark.parametrize(
    ("info", "needle"),
    [
        ({**ID_TOKENINFO, "email_verified": "false"}, "no verified e-mail"),
        ({k: v for k, v in ID_TOKENINFO.items() if k != "email"}, "no verified e-mail"),
    ],
)
def test_unverified_or_missing_e_mail_is_refused(info, needle):
    transport = Transport({TOKEN_URL: (200, REFRESHED), TOKENINFO_URL: (200, info)})
    with pytest.raises(InputError, match=needle):
        google_account(lambda: adc_user(), lambda: transport)


def test_revoked_refresh_token_and_unreachable_google():
    revoked = Transport({TOKEN_URL: (400, {"error": "invalid_grant", "error_description": "Bad Request"})})
    with pytest.raises(InputError, match="could not be refreshed"):
        google_account(lambda: adc_user(), lambda: revoked)
    with pytest.raises(TransientError, match="cannot reach Google"):
        google_account(lambda: adc_user(), lambda: Transport({}))


def test_a_service_account_key_names_its_account_without_a_request():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "orchestra-prod",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "deployer@orchestra-prod.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "token_uri": TOKEN_URL,
    }
    creds = service_account.Credentials.from_service_account_info(info)
    transport = Transport({})
    assert google_account(lambda: creds, lambda: transport) == info["client_email"]
    assert transport.calls == []


class MetadataCredentials:
    """Shaped like google.auth.compute_engine.Credentials: the account is "default" until a
    refresh asks the metadata server."""

    def __init__(self) -> None:
        self.service_account_email = "default"
        self.token: str | None = None
        self.valid = False

    def refresh(self, request: Any) -> None:
        self.service_account_email = "123456789012-compute@developer.gserviceaccount.com"
        self.token, self.valid = "ya29.c-metadata", True


def test_metadata_server_credentials_are_refreshed_to_learn_their_account():
    assert google_account(MetadataCredentials, lambda: Transport({})) == (
        "123456789012-compute@developer.gserviceaccount.com"
    )


def test_cli_identity_is_free_only_with_the_local_store(tmp_path):
    local = SqliteStateStore(tmp_path / "state.db")
    try:
        assert cli_identity(local, "user:bob", local_user=lambda: "user:me") == "user:bob"
        assert cli_identity(local, None, local_user=lambda: "user:me") == "user:me"
    finally:
        local.close()
    remote = object()  # any store that is not the local SQLite file
    account = lambda: "alice@corp.example"  # noqa: E731
    assert cli_identity(remote, None, local_user=lambda: "user:me", account=account) == "alice@corp.example"
    assert cli_identity(remote, "user:Alice@Corp.example", local_user=lambda: "x", account=account) == (
        "alice@corp.example"
    )
    with pytest.raises(InputError, match="is not the Google account in use") as exc:
        cli_identity(remote, "user:root", local_user=lambda: "x", account=account)
    assert exc.value.where == "--as"
