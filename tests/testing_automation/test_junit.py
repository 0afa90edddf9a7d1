"""JUnit XML parsing: pytest, Maven Surefire and go-junit-report shapes, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from orchestra.automations.testing.junit import Outcome, parse_junit, parse_junit_bytes
from orchestra.errors import InputError

JUNIT = Path(__file__).resolve().parents[1] / "fixtures" / "junit"


def by_name(cases):
    return {c.name: c for c in cases}


def test_pytest_report():
    cases = by_name(parse_junit(JUNIT / "pytest.xml"))
    assert {n: c.outcome for n, c in cases.items()} == {
        "test_adds": Outcome.passed,
        "test_compares_prices": Outcome.failed,
        "test_db": Outcome.skipped,
        "test_uses_fixture": Outcome.error,
        "test_total": Outcome.passed,
    }
    assert cases["test_total"].id == "test_sample.TestCart::test_total"
    assert cases["test_compares_prices"].message.startswith("AssertionError: price rounding")
    assert "fixture exploded" in cases["test_uses_fixture"].message
    assert cases["test_adds"].duration_seconds == 0.0 and cases["test_adds"].suite == "pytest"


def test_surefire_report_with_reruns_and_locale_time():
    cases = by_name(parse_junit(JUNIT / "surefire.xml"))
    assert cases["appliesDiscount"].outcome == Outcome.failed
    assert "expected: <90> but was: <100>" in cases["appliesDiscount"].message
    flaky = cases["checkoutCallsPayments"]
    assert flaky.outcome == Outcome.passed and flaky.reruns_failed == 1 and flaky.flaky_rerun
    assert flaky.duration_seconds == 1203.5
    assert flaky.message == "Read timed out"
    broken = cases["loadsCatalog"]
    assert broken.outcome == Outcome.error and broken.reruns_failed == 1 and not broken.flaky_rerun
    assert cases["legacyPricing"].outcome == Outcome.skipped
    assert cases["addsItem"].id == "com.example.shop.CartServiceTest::addsItem"


def test_go_junit_report_with_packages_and_subtests():
    cases = parse_junit(JUNIT / "go-junit-report.xml")
    assert [c.suite for c in cases] == ["github.com/example/shop/cart"] * 3 + [
        "github.com/example/shop/pricing"
    ] * 2
    named = by_name(cases)
    assert named["TestTotal/with_discount"].outcome == Outcome.failed
    assert "total = 100, want 90" in named["TestTotal/with_discount"].message
    assert named["TestRound"].outcome == Outcome.skipped
    assert named["TestCurrency"].outcome == Outcome.passed


def test_missing_optional_attributes_are_tolerated():
    cases = by_name(parse_junit(JUNIT / "minimal.xml"))
    assert cases["bare"].outcome == Outcome.passed and cases["bare"].duration_seconds is None
    assert cases["bare"].classname == "" and cases["bare"].id == "::bare"
    assert cases["empty time"].outcome == Outcome.failed and cases["empty time"].message is None
    assert cases["no classname"].duration_seconds == 2.0


def test_malformed_xml_names_file_line_and_problem():
    with pytest.raises(InputError) as caught:
        parse_junit(JUNIT / "malformed.xml")
    message = str(caught.value)
    assert "malformed.xml:5" in message and "mismatched tag" in message and "expected JUnit XML" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "not well-formed XML"),
        (b"<html><body>502 Bad Gateway</body></html>", "root element is <html>"),
        (b"<testsuite><testcase classname='a'/></testsuite>", "without a name attribute"),
        (b"<testsuite><testcase name='a' time='fast'/></testsuite>", "not a number of seconds"),
        (
            b"<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY a 'aaaa'>]><testsuite>&a;</testsuite>",
            "DTDs and entity declarations are not accepted",
        ),
    ],
)
def test_bad_reports_are_input_errors(data, expected):
    with pytest.raises(InputError, match=expected):
        parse_junit_bytes(data, "report.xml")


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(InputError, match="not found .*did the suite write it"):
        parse_junit(tmp_path / "nope.xml")
