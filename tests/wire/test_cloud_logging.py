"""Cloud Logging ``entries.list`` through the real AuthorizedSession path, against the local
wire server, and the query built by ``logging_filter`` checked against the Logging query grammar.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from orchestra.automations.ai_services import LoggingSettings
from orchestra.automations.ai_services.usage import (
    LoggingQueryError,
    fetch_log_entries,
    logging_filter,
    usage_from_entries,
)
from orchestra.errors import TransientError, is_transient

from .server import Reply, WireServer, google_error

PATH = "/v2/entries:list"
START = dt.datetime(2025, 12, 18, 10, 0, tzinfo=dt.UTC)
END = dt.datetime(2025, 12, 18, 11, 0, tzinfo=dt.UTC)

# ----- a small checker for the Logging query language ------------------------------------------
# expression := term ((AND | OR)? term)*      (juxtaposition is AND)
# term       := NOT term | "-" term | "(" expression ")" | field OP value | value
# field      := name ("." (name | "quoted"))*
# OP         := = | != | < | <= | > | >= | : | =~ | !~
# value      := "quoted" | bare word | * (after ":" only)

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|!=|=~|!~|[=<>:])|(?P<paren>[()])'
    r"|(?P<star>\*)|(?P<word>[A-Za-z0-9_@$/+.\-]+))"
)
_COMPARATORS = {"=", "!=", "<", "<=", ">", ">=", ":", "=~", "!~"}


class FilterSyntaxError(ValueError):
    pass


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterSyntaxError(f"unexpected character at column {position + 1}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_filter(text: str) -> Any:
    """The query as a small tree; FilterSyntaxError naming the token where it goes wrong."""
    tokens = tokenize(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise FilterSyntaxError("unexpected end of the query")
        token = tokens[position]
        position += 1
        return token

    def expression() -> Any:
        terms = [term()]
        operators = []
        while (token := peek()) is not None and token != ("paren", ")"):
            if token in (("word", "AND"), ("word", "OR")):
                operators.append(take()[1])
            else:
                operators.append("AND")
            terms.append(term())
        if not operators:
            return terms[0]
        if len(set(operators)) > 1:
            # Logging gives OR precedence over AND; the queries built here never mix them unbracketed.
            raise FilterSyntaxError("AND and OR mixed without parentheses")
        return (operators[0], terms)

    def term() -> Any:
        token = take()
        if token in (("word", "NOT"), ("op", "-")) or (token[0] == "word" and token[1] == "-"):
            return ("NOT", term())
        if token == ("paren", "("):
            inner = expression()
            if take() != ("paren", ")"):
                raise FilterSyntaxError("missing ')'")
            return ("group", inner)
        if token[0] == "word" and token[1] not in {"AND", "OR"}:
            following = peek()
            if following is not None and following[0] == "op":
                operator = take()[1]
                if operator not in _COMPARATORS:
                    raise FilterSyntaxError(f"unknown comparison {operator!r}")
                value = take()
                if value[0] == "star" and operator != ":":
                    raise FilterSyntaxError("'*' only follows ':'")
                if value[0] not in {"string", "word", "star"}:
                    raise FilterSyntaxError(f"expected a value after {operator!r}, got {value[1]!r}")
                return ("cmp", token[1], operator, value[1])
            return ("value", token[1])
        if token[0] == "string":
            return ("value", token[1])
        raise FilterSyntaxError(f"unexpected {token[1]!r}")

    tree = expression()
    if position != len(tokens):
        raise FilterSyntaxError(f"unexpected {tokens[position][1]!r}")
    return tree


# ----- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        "jsonPayload.model:* AND (",
        "jsonPayload.model:* AND",
        'timestamp = * AND severity="INFO"',
        'jsonPayload.model:"gemini',
        "AND jsonPayload.model:*",
        'jsonPayload.model:* AND severity>="INFO" OR severity="DEBUG"',
    ],
)
def test_the_checker_refuses_broken_queries(broken: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(broken)


@pytest.mark.parametrize(
    "operator_filter",
    [
        LoggingSettings.model_fields["filter"].default,
        'logName="projects/example-project/logs/ai-requests" AND severity>=INFO',
        'jsonPayload.model=~"^gemini-" OR resource.labels.service_name="assistant-api"',
    ],
)
def test_logging_filter_is_a_well_formed_query_bounded_by_the_window(operator_filter: str) -> None:
    settings = LoggingSettings(project="example-project", filter=operator_filter)

    tree = parse_filter(logging_filter(settings, START, END))

    # The operator's query stays bracketed, so an OR inside it cannot escape the time bounds.
    operator, (group, lower, upper) = tree
    assert operator == "AND"
    assert group == ("group", parse_filter(operator_filter))
    assert lower == ("cmp", "timestamp", ">=", '"2025-12-18T10:00:00Z"')
    assert upper == ("cmp", "timestamp", "<", '"2025-12-18T11:00:00Z"')


def test_fetch_log_entries_pages_through_entries_list(
    wire: WireServer, wire_fixture: Callable[[str], Any]
) -> None:
    first, second = wire_fixture("logging_entries_page1.json"), wire_fixture("logging_entries_page2.json")
    wire.answer("POST", PATH, Reply(200, first), Reply(200, second))
    settings = LoggingSettings(project="example-project", page_size=2)
    session = AuthorizedSession(AnonymousCredentials())

    entries = list(fetch_log_entries(settings, START, END, session=session, url=wire.base_url + PATH))

    assert [e["insertId"] for e in entries] == ["1x9kq2f001ab", "1x9kq2f002ab", "1x9kq2f003ab"]
    one, two = wire.requests
    assert (one.method, one.path, one.query) == ("POST", PATH, {})
    assert one.headers["content-type"] == "application/json"
    expected = {
        "resourceNames": ["projects/example-project"],
        "filter": logging_filter(settings, START, END),
        "orderBy": "timestamp asc",
        "pageSize": 2,
    }
    assert one.json() == expected
    assert two.json() == {**expected, "pageToken": first["nextPageToken"]}

    usage = usage_from_entries(entries, source="cloud-logging:example-project", max_bad_share=0.0)
    assert len(usage) == 3
    assert sorted(usage.input_tokens.tolist()) == [1790, 1840, 6120]


def test_fetch_stops_at_max_entries_without_asking_for_the_next_page(
    wire: WireServer, wire_fixture: Callable[[str], Any]
) -> None:
    wire.answer("POST", PATH, Reply(200, wire_fixture("logging_entries_page1.json")))
    settings = LoggingSettings(project="example-project", page_size=2, max_entries=2)
    session = AuthorizedSession(AnonymousCredentials())

    entries = list(fetch_log_entries(settings, START, END, session=session, url=wire.base_url + PATH))

    assert len(entries) == 2
    assert len(wire.requests) == 1


@pytest.mark.parametrize(
    ("reply", "error", "transient"),
    [
        (
            google_error(403, "PERMISSION_DENIED", "Permission denied for all log views"),
            LoggingQueryError,
            False,
        ),
        (
            google_error(400, "INVALID_ARGUMENT", "Unparseable filter: syntax error at line 1, column 7"),
            LoggingQueryError,
            False,
        ),
        (google_error(503, "UNAVAILABLE", "The service is currently unavailable."), TransientError, True),
        (
            google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for ReadRequestsPerMinutePerProject"),
            TransientError,
            True,
        ),
    ],
)
def test_errors_are_classified(
    wire: WireServer, reply: Reply, error: type[Exception], transient: bool
) -> None:
    wire.answer("POST", PATH, reply)
    settings = LoggingSettings(project="example-project")
    session = AuthorizedSession(AnonymousCredentials())

    with pytest.raises(error) as caught:
        list(fetch_log_entries(settings, START, END, session=session, url=wire.base_url + PATH))

    assert is_transient(caught.value) is transient
    assert f"HTTP {reply.status}" in str(caught.value)
    assert len(wire.requests) == 1
