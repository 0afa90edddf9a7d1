"""The console's HTTP contract against a real `orchestra console` process: security headers on
every response, sessions, CSRF on every change, POST only, loopback Host only."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import requests
from orchestra.console.app import SECURITY_HEADERS
from orchestra.store import open_store

from .conftest import Console, Seeded

pytestmark = pytest.mark.timeout(300)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _session(console: Console) -> tuple[requests.Session, str]:
    session = requests.Session()
    response = session.get(console.login_url, allow_redirects=False, timeout=30)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    page = session.get(console.base + "/breakers", timeout=30)
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "every page with a form carries the CSRF token"
    return session, match.group(1)


def test_every_response_carries_the_security_headers(
    seeded: Seeded, start_console: Callable[[str], Console]
) -> None:
    console = start_console("user:bob")
    session, _ = _session(console)
    paths = ["/", "/runs", f"/runs/{seeded.approve_run}", "/approvals", "/deployments", "/breakers"]
    paths += ["/dead-letters", f"/dead-letters/{seeded.letter}", "/runs/missing", "/static/console.css"]
    for path in paths:
        response = session.get(console.base + path, timeout=30)
        assert response.headers["Content-Security-Policy"] == CSP, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "no-referrer", path
        assert SECURITY_HEADERS["Content-Security-Policy"] == CSP
    anonymous = requests.get(console.base + "/", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Security-Policy"] == CSP
    assert "<script" not in session.get(console.base + "/", timeout=30).text


def test_changes_need_the_sessions_csrf_token(
    seeded: Seeded, start_console: Callable[[str], Console]
) -> None:
    console = start_console("user:bob")
    session, csrf = _session(console)
    url = console.base + "/breakers/reset"
    assert session.post(url, data={"name": seeded.breaker}, timeout=30).status_code == 403
    wrong = csrf[:-1] + ("A" if csrf[-1] != "A" else "B")
    assert session.post(url, data={"name": seeded.breaker, "csrf": wrong}, timeout=30).status_code == 403
    approval = console.base + f"/approvals/{seeded.reject_run}"
    refused = session.post(approval, data={"decision": "reject", "csrf": ""}, timeout=30)
    assert refused.status_code == 403 and "CSRF" in refused.text
    store = open_store(seeded.store_url)
    assert store.get_run(seeded.reject_run).status == "awaiting_approval"
    # Another session's token is not this session's.
    other, other_csrf = _session(start_console("user:carol"))
    assert other_csrf != csrf
    assert session.post(url, data={"name": seeded.breaker, "csrf": other_csrf}, timeout=30).status_code == 403
    done = session.post(url, data={"name": seeded.breaker, "csrf": csrf}, allow_redirects=False, timeout=30)
    assert done.status_code == 303
    assert [e.payload["by"] for e in store.list_events(source="console")] == ["user:bob"]


def test_no_session_no_change_and_get_changes_nothing(
    seeded: Seeded, start_console: Callable[[str], Console]
) -> None:
    console = start_console("user:bob")
    anonymous = requests.post(
        console.base + f"/approvals/{seeded.reject_run}", data={"decision": "reject"}, timeout=30
    )
    assert anonymous.status_code == 401
    session, csrf = _session(console)
    assert session.get(console.base + f"/approvals/{seeded.reject_run}", timeout=30).status_code == 405
    assert session.put(console.base + "/breakers/reset", data={"csrf": csrf}, timeout=30).status_code == 405
    forged = requests.get(console.base + "/", cookies={"orchestra_console_session": "guessed"}, timeout=30)
    assert forged.status_code == 401
    assert open_store(seeded.store_url).get_run(seeded.reject_run).status == "awaiting_approval"


def test_other_host_names_are_refused(start_console: Callable[[str], Console]) -> None:
    console = start_console("user:bob")
    session, _ = _session(console)
    rebound = session.get(console.base + "/", headers={"Host": "attacker.example"}, timeout=30)
    assert rebound.status_code == 400


def test_a_bad_decision_names_the_field(seeded: Seeded, start_console: Callable[[str], Console]) -> None:
    console = start_console("user:bob")
    session, csrf = _session(console)
    response = session.post(
        console.base + f"/approvals/{seeded.reject_run}", data={"decision": "maybe", "csrf": csrf}, timeout=30
    )
    assert response.status_code == 400
    assert "decision" in response.text and "approve, reject, cancel" in response.text
    missing = session.post(
        console.base + "/approvals/nope", data={"decision": "approve", "csrf": csrf}, timeout=30
    )
    assert missing.status_code == 404
