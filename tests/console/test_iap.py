"""The cloud console behind Identity-Aware Proxy, through its function: the identity comes only
from a verified ES256 assertion (real signatures, keys served by a local HTTP server)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import functions_framework
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt
from orchestra import app as app_module
from orchestra.app import build_app, load_config
from orchestra.console.auth import IAP_ISSUER, IapAuth
from orchestra.console.cloud import reset_console
from orchestra.errors import ConfigError

from .conftest import ROOT, Seeded, _registry

AUDIENCE = "/projects/123456/locations/europe-west1/services/orchestra-console"
CSRF_KEY = "k" * 40


def _key() -> tuple[bytes, bytes]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, public


SIGNING, PUBLIC = _key()
OTHER, _ = _key()


class _Keys(BaseHTTPRequestHandler):
    body = json.dumps({"key-1": PUBLIC.decode()}).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def certs_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/public_key"
    finally:
        server.shutdown()
        server.server_close()


def assertion(
    email: str = "bob@corp.example",
    *,
    audience: str = AUDIENCE,
    issuer: str = IAP_ISSUER,
    lifetime: int = 600,
    key: bytes = SIGNING,
    kid: str = "key-1",
) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": f"accounts.google.com:{email}",
        "email": f"accounts.google.com:{email}",
    }
    claims |= {"iat": now - 60, "exp": now + lifetime}
    if lifetime < 0:
        claims["iat"] = now + lifetime - 600
    signer = crypt.ES256Signer.from_string(key, kid)
    return jwt.encode(signer, claims).decode()


@pytest.fixture
def client(seeded: Seeded, certs_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("ORCHESTRA_CONSOLE_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("ORCHESTRA_CONSOLE_CSRF_KEY", CSRF_KEY)
    monkeypatch.setenv("ORCHESTRA_CONSOLE_IAP_CERTS_URL", certs_url)
    registry = _registry()
    app = build_app(
        config=load_config(seeded.config, registry=registry, extras=False),
        store_url=seeded.store_url,
        registry=registry,
    )
    previous = app_module.set_app(app)
    reset_console()
    try:
        source = ROOT / "functions" / "console" / "main.py"
        yield functions_framework.create_app(target="console", source=str(source)).test_client()
    finally:
        reset_console()
        app_module.set_app(previous)
        app.close()


def _get(client: Any, path: str, token: str | None, **headers: str) -> Any:
    if token is not None:
        headers["X-Goog-IAP-JWT-Assertion"] = token
    return client.get(path, headers=headers)


def test_a_verified_assertion_is_the_identity(client: Any) -> None:
    response = _get(client, "/", assertion())
    assert response.status_code == 200
    assert '<strong id="identity">bob@corp.example</strong>' in response.get_data(as_text=True)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "/login" not in response.get_data(as_text=True).split("<main", 1)[0]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            lambda: assertion(audience="/projects/999/global/backendServices/1"), id="wrong-audience"
        ),
        pytest.param(lambda: assertion(lifetime=-60), id="expired"),
        pytest.param(lambda: assertion(issuer="https://accounts.google.com"), id="wrong-issuer"),
        pytest.param(lambda: assertion(key=OTHER), id="signed-by-another-key"),
        pytest.param(lambda: assertion(kid="key-2"), id="unknown-key-id"),
        pytest.param(lambda: assertion().rsplit(".", 1)[0] + ".", id="unsigned"),
        pytest.param(lambda: assertion().split(".", 1)[0], id="header-only"),
        pytest.param(
            lambda: ".".join(
                [
                    jwt._helpers.unpadded_urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode(),
                    assertion().split(".")[1],
                    "",
                ]
            ),
            id="alg-none",
        ),
        pytest.param(lambda: "", id="empty"),
    ],
)
def test_an_invalid_assertion_is_401(client: Any, token: Any) -> None:
    response = _get(client, "/", token())
    assert response.status_code == 401
    assert "Identity-Aware Proxy" in response.get_data(as_text=True)


def test_caller_set_identity_headers_are_never_trusted(client: Any) -> None:
    response = _get(
        client,
        "/approvals",
        None,
        **{
            "X-Goog-Authenticated-User-Email": "accounts.google.com:bob@corp.example",
            "X-Goog-Authenticated-User-Id": "1",
        },
    )
    assert response.status_code == 401


def test_decisions_behind_iap_need_the_csrf_token_and_obey_four_eyes(client: Any, seeded: Seeded) -> None:
    page = _get(client, "/approvals", assertion("bob@corp.example")).get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    path = f"/approvals/{seeded.reject_run}"
    headers = {"X-Goog-IAP-JWT-Assertion": assertion("bob@corp.example")}
    assert client.post(path, data={"decision": "reject"}, headers=headers).status_code == 403
    carol = _get(client, "/approvals", assertion("carol@corp.example")).get_data(as_text=True)
    carol_csrf = re.search(r'name="csrf" value="([^"]+)"', carol)
    assert carol_csrf and carol_csrf.group(1) != csrf.group(1)
    refused = client.post(path, data={"decision": "reject", "csrf": carol_csrf.group(1)}, headers=headers)
    assert refused.status_code == 403
    done = client.post(
        path, data={"decision": "reject", "comment": "no", "csrf": csrf.group(1)}, headers=headers
    )
    assert done.status_code == 303
    run = app_module.get_app().store.get_run(seeded.reject_run)
    assert run is not None and run.decision is not None and run.decision.by == "bob@corp.example"


def test_missing_settings_fail_closed() -> None:
    with pytest.raises(ConfigError) as caught:
        IapAuth.from_env({"ORCHESTRA_CONSOLE_CSRF_KEY": "tiny-secret"})
    problems = " ".join(caught.value.problems)
    assert "ORCHESTRA_CONSOLE_AUDIENCE" in problems and "ORCHESTRA_CONSOLE_CSRF_KEY" in problems
    assert "tiny-secret" not in problems  # the secret is never echoed


def test_login_links_do_not_exist_behind_iap(client: Any) -> None:
    assert _get(client, "/login?token=x", assertion()).status_code == 404
