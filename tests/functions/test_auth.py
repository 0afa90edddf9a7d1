"""Google ID tokens: verified for real (signature, audience, issuer, expiry) against a locally
generated key pair served as Google's certificates; no network."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from google.auth.exceptions import TransportError
from orchestra import identities
from orchestra.api.auth import Authenticator, parse_tokens
from orchestra.errors import ConfigError

FUNCTION = "controller"
AUDIENCE = "https://europe-west1-orchestra-prod.cloudfunctions.net/controller"


def _key_and_cert() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google-certs")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem_key, cert.public_bytes(serialization.Encoding.PEM)


KEY_PEM, CERT_PEM = _key_and_cert()
OTHER_KEY_PEM, _ = _key_and_cert()


@dataclass
class _Response:
    status: int
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)


class CertsTransport:
    """Answers the certificate fetch google-auth makes, as googleapis.com would."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def __call__(self, url: str, method: str = "GET", **kwargs: object) -> _Response:
        self.calls.append(url)
        if self.fail:
            raise TransportError("connection reset")
        return _Response(200, json.dumps({"kid-1": CERT_PEM.decode()}).encode())


def token(key: bytes = KEY_PEM, **claims: object) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "sub": "1234567890",
        "email": "deployer@orchestra-prod.iam.gserviceaccount.com",
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    signer = crypt.RSASigner.from_string(key, "kid-1")
    return jwt.encode(signer, payload).decode()


@pytest.fixture
def transport(monkeypatch) -> CertsTransport:
    fake = CertsTransport()
    monkeypatch.setattr(identities, "_google_request", fake)
    monkeypatch.setenv("ORCHESTRA_AUDIENCE", f"{AUDIENCE}, https://controller-abc-ew.a.run.app")
    monkeypatch.delenv("ORCHESTRA_API_TOKENS", raising=False)
    return fake


def test_google_id_token_identity_is_its_email(client, fn_app, transport):
    response = client.post(
        "/tasks/probe",
        data="{}",
        headers={"Authorization": f"Bearer {token()}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.json
    assert response.json["run"]["requested_by"] == "deployer@orchestra-prod.iam.gserviceaccount.com"
    assert transport.calls  # the signature was checked against the fetched certificates


def test_second_audience_is_accepted(transport):
    identity = Authenticator.from_env().authenticate(
        f"Bearer {token(aud='https://controller-abc-ew.a.run.app')}"
    )
    assert identity is not None and identity.method == "google"


@pytest.mark.parametrize(
    "bad",
    [
        {"aud": "https://someone-else.example"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        {"email": None},
        {"email_verified": False},
    ],
)
def test_invalid_google_tokens_are_401(client, fn_app, transport, bad):
    claims = {k: v for k, v in bad.items() if v is not None}
    raw = token(**claims) if "email" not in bad else _token_without_email()
    response = client.post("/tasks/probe", data="{}", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401
    assert not fn_app.store.list_runs(limit=None)


def _token_without_email() -> str:
    now = int(time.time())
    signer = crypt.RSASigner.from_string(KEY_PEM, "kid-1")
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "sub": "1",
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(signer, payload).decode()


def test_token_signed_by_another_key_is_401(client, fn_app, transport):
    response = client.post(
        "/tasks/probe", data="{}", headers={"Authorization": f"Bearer {token(OTHER_KEY_PEM)}"}
    )
    assert response.status_code == 401


def test_certificates_unreachable_is_503_not_401(client, fn_app, transport):
    transport.fail = True
    response = client.post("/tasks/probe", data="{}", headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 503


def test_token_spec_parsing():
    assert parse_tokens(" a=user:alice , b=ci:deploy ") == {"a": "user:alice", "b": "ci:deploy"}
    assert parse_tokens("") == {}
    for bad in ("novalue", "=x", "a=", "a=x,a=y"):
        with pytest.raises(ConfigError):
            parse_tokens(bad)
