"""The console in a real browser against real `orchestra console` processes: sign-in, every
page, decisions under the four-eyes rule, breaker reset, dead-letter replay, hostile text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from orchestra.store import open_store
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import HOSTILE_BRANCH, HOSTILE_MESSAGE, HOSTILE_TRIGGER, Console, Seeded

pytestmark = pytest.mark.timeout(300)


def _shot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(folder / f"{name}.png"))


def _login(driver: webdriver.Chrome, console: Console) -> None:
    driver.get(console.login_url)
    assert driver.find_element(By.ID, "identity").text


def _go(driver: webdriver.Chrome, element: WebElement) -> None:
    """Click a link or submit button and wait until the next page replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(staleness_of(page))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _h1(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def _problem(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.ID, "problem").text


def _no_script_ran(driver: webdriver.Chrome) -> None:
    with pytest.raises(NoAlertPresentException):
        _ = driver.switch_to.alert.text
    assert driver.find_elements(By.TAG_NAME, "script") == []
    assert driver.find_elements(By.CSS_SELECTOR, "img[src='x'], b[onmouseover]") == []
    # A CSP violation would mean markup or inline style got through; none may be logged.
    violations = [
        e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]
    ]
    assert violations == []


def test_login_link_works_once_and_pages_need_a_session(
    start_console: Callable[[str], Console], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    console = start_console("user:bob")
    browser.get(console.base + "/runs")
    assert _h1(browser) == "Sign-in required"
    _login(browser, console)
    assert browser.current_url == console.base + "/"
    assert browser.find_element(By.ID, "identity").text == "user:bob"
    cookie = browser.get_cookie("orchestra_console_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    _shot(browser, tmp_path, "overview")
    browser.delete_all_cookies()
    browser.get(console.login_url)
    assert _h1(browser) == "Login link refused"
    browser.get(console.base + "/")
    assert _h1(browser) == "Sign-in required"


def test_every_page_renders_with_its_data(
    seeded: Seeded, start_console: Callable[[str], Console], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    console = start_console("user:bob")
    _login(browser, console)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Health:" in body and "degraded" in body  # the open breaker
    assert seeded.breaker in body and seeded.approve_run in body
    assert "awaiting_approval" in body  # outcomes are written out, not only coloured

    _go(browser, browser.find_element(By.LINK_TEXT, "Runs"))
    assert _h1(browser) == "Runs"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    assert len(rows) == 50
    first_page = {r.find_element(By.TAG_NAME, "a").text for r in rows}
    _go(browser, browser.find_element(By.ID, "next-page"))
    second = {
        r.find_element(By.TAG_NAME, "a").text
        for r in browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    }
    assert len(second) == 12 and not first_page & second
    _shot(browser, tmp_path, "runs-page-2")
    browser.get(console.base + "/runs?environment=production&trigger_kind=webhook")
    filtered = [
        r.find_element(By.TAG_NAME, "a").text
        for r in browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    ]
    assert sorted(filtered) == sorted([seeded.approve_run, seeded.reject_run])
    browser.get(console.base + "/runs?status=nonsense")
    assert "status" in _problem(browser) and "awaiting_approval" in _problem(browser)

    browser.get(console.base + f"/runs/{seeded.approve_run}")
    text = browser.find_element(By.TAG_NAME, "main").text
    for expected in (
        "Findings (1)",
        "Actions (1)",
        "Timeline",
        "requested by user:alice",
        "high",
        "Evidence",
    ):
        assert expected in text
    assert "webhooks:delivery-approve" in text  # the event that caused it
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 3
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart line.threshold")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.episode")
    _shot(browser, tmp_path, "run")

    for link, heading in (
        ("Approvals", "Approvals"),
        ("Deployments", "Deployments"),
        ("Breakers", "Circuit breakers"),
        ("Dead letters", "Dead letters"),
    ):
        _go(browser, browser.find_element(By.LINK_TEXT, link))
        assert _h1(browser) == heading
        _shot(browser, tmp_path, link.lower().replace(" ", "-"))
    _go(browser, browser.find_element(By.LINK_TEXT, seeded.letter))
    assert "dl <x>" in browser.find_element(By.ID, "letter-data").text
    browser.set_window_size(390, 844)  # a phone
    browser.get(console.base + "/approvals")
    _shot(browser, tmp_path, "approvals-phone")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 400
    _no_script_ran(browser)


def test_the_requester_cannot_approve_and_another_person_can(
    seeded: Seeded, start_console: Callable[[str], Console], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    alice = start_console("user:alice")
    _login(browser, alice)
    browser.get(alice.base + "/approvals")
    _go(browser, browser.find_element(By.CSS_SELECTOR, f"#pending-{seeded.approve_run} button.approve"))
    assert _h1(browser) == "Refused"
    assert "is the requester" in _problem(browser)
    _shot(browser, tmp_path, "refused")
    store = open_store(seeded.store_url)
    assert store.get_run(seeded.approve_run).status == "awaiting_approval"

    bob = start_console("user:bob")
    browser.delete_all_cookies()
    _login(browser, bob)
    browser.get(bob.base + "/approvals")
    browser.find_element(By.ID, f"approve-comment-{seeded.approve_run}").send_keys("looks right")
    _go(browser, browser.find_element(By.CSS_SELECTOR, f"#pending-{seeded.approve_run} button.approve"))
    assert browser.find_element(By.ID, "notice").text == f"{seeded.approve_run}: approved"
    run = store.get_run(seeded.approve_run)
    assert run.status == "succeeded" and run.decision is not None
    assert (run.decision.by, run.decision.comment) == ("user:bob", "looks right")
    assert run.actions[0].status == "applied"
    browser.get(bob.base + f"/runs/{seeded.approve_run}")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "approved by user:bob: looks right" in main and "applied" in main
    _shot(browser, tmp_path, "approved-run")


def test_reject_with_a_comment(
    seeded: Seeded, start_console: Callable[[str], Console], browser: webdriver.Chrome
) -> None:
    bob = start_console("user:bob")
    _login(browser, bob)
    browser.get(bob.base + "/approvals")
    browser.find_element(By.ID, f"reject-comment-{seeded.reject_run}").send_keys("not <now>")
    _go(browser, browser.find_element(By.CSS_SELECTOR, f"#pending-{seeded.reject_run} button.reject"))
    assert browser.find_element(By.ID, "notice").text == f"{seeded.reject_run}: rejected"
    run = open_store(seeded.store_url).get_run(seeded.reject_run)
    assert run.decision is not None and (run.decision.decision, run.decision.by) == ("reject", "user:bob")
    assert run.decision.comment == "not <now>"
    assert browser.find_elements(By.ID, f"pending-{seeded.reject_run}") == []


def test_reset_a_breaker_records_who(
    seeded: Seeded, start_console: Callable[[str], Console], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    bob = start_console("user:bob")
    _login(browser, bob)
    browser.get(bob.base + "/breakers")
    row = browser.find_element(By.ID, "breaker-1")
    assert "open" in row.text and "boom <i>two</i>" in row.text
    _go(browser, row.find_element(By.CSS_SELECTOR, "button.reset"))
    row = browser.find_element(By.ID, "breaker-1")
    assert "closed" in row.text
    assert row.find_element(By.CSS_SELECTOR, ".last-reset").text.startswith("user:bob at ")
    _shot(browser, tmp_path, "breaker-reset")
    events = open_store(seeded.store_url).list_events(source="console")
    assert [(e.kind, e.payload["by"], e.payload["breaker"]) for e in events] == [
        ("breaker-reset", "user:bob", seeded.breaker)
    ]


def test_replay_a_dead_letter(
    seeded: Seeded, start_console: Callable[[str], Console], browser: webdriver.Chrome
) -> None:
    bob = start_console("user:bob")
    _login(browser, bob)
    browser.get(bob.base + f"/dead-letters/{seeded.letter}")
    _go(browser, browser.find_element(By.ID, "replay"))
    assert _h1(browser).startswith("Run ")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "requested by user:bob (scheduled)" in main and "replay:dl-1" in main
    letter = open_store(seeded.store_url).get_dead_letter(seeded.letter)
    assert letter is not None and len(letter.replayed_run_ids) == 1
    browser.get(bob.base + "/dead-letters")
    assert letter.replayed_run_ids[0] in browser.find_element(By.TAG_NAME, "main").text


def test_hostile_branch_names_and_messages_show_as_text(
    seeded: Seeded, start_console: Callable[[str], Console], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    bob = start_console("user:bob")
    _login(browser, bob)
    for path in ("/", "/runs", f"/runs/{seeded.approve_run}", "/approvals", "/breakers"):
        browser.get(bob.base + path)
        _no_script_ran(browser)
    browser.get(bob.base + f"/runs/{seeded.approve_run}")
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    main = browser.find_element(By.TAG_NAME, "main").text
    assert f"branch {HOSTILE_BRANCH} is stale" in main
    assert HOSTILE_TRIGGER in main
    # The commit message inside the evidence (JSON, so its quote is escaped), as text.
    assert HOSTILE_MESSAGE.replace('"', '\\"') in main
    _shot(browser, tmp_path, "hostile")
    _no_script_ran(browser)
