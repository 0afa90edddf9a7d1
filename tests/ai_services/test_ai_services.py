"""ai-services: log reading, opportunities against the known answer, the policy file actions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from orchestra.automations.ai_services import AIServicesAutomation, LoggingSettings, ModelPrice, Settings
from orchestra.automations.ai_services import analysis as an
from orchestra.automations.ai_services.generator import Options, generate, to_jsonl, write_sample
from orchestra.automations.ai_services.policy import parse
from orchestra.automations.ai_services.usage import (
    ENTRIES_LIST_URL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_THROTTLED,
    LoggingQueryError,
    fetch_log_entries,
    read_usage_file,
    usage_from_entries,
)
from orchestra.errors import InputError, TransientError
from orchestra.models import Mode, Risk

SAMPLE = Path(str(resources.files("orchestra").joinpath("samples/ai_services")))


def record(**overrides: Any) -> dict[str, Any]:
    base = {
        "timestamp": "2025-03-10T10:00:00Z",
        "model": "m-big",
        "prompt_hash": "h1",
        "input_tokens": 100,
        "cached_input_tokens": 0,
        "output_tokens": 10,
        "latency_ms": 250,
        "status": "ok",
        "route": "r1",
    }
    base.update(overrides)
    return base


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


PRICES = {
    "m-big": ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5, tier=2),
    "m-small": ModelPrice(input_per_mtok=0.2, output_per_mtok=0.8, tier=1),
}


def test_generator_is_deterministic(tmp_path: Path) -> None:
    opts = Options(seed=9, days=2)
    assert to_jsonl(generate(opts)) == to_jsonl(generate(opts))
    assert to_jsonl(generate(opts)) != to_jsonl(generate(dataclasses.replace(opts, seed=10)))
    write_sample(tmp_path / "a", opts)
    write_sample(tmp_path / "b", opts)
    for name in ("usage.jsonl", "settings.yaml", "expected.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_bundled_sample_is_what_the_script_generates(tmp_path: Path) -> None:
    write_sample(tmp_path)
    for name in ("usage.jsonl", "settings.yaml", "expected.json"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


def _found(analysis: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for o in analysis.summary["opportunities"]:
        keys = {
            "response-cache": ("route", "model"),
            "context-cache": ("model", "prefix_hash"),
            "routing": ("route", "from_model"),
            "backoff": ("model",),
        }[o["kind"]]
        item = {k: o[k] for k in keys}
        if o["kind"] == "routing":
            item["to_model"] = o["policy_entry"]["to_model"]
        out.setdefault(o["kind"], []).append(item)
    return out


@pytest.mark.parametrize("seed", [Options.seed, 1, 2])
def test_opportunities_match_the_known_answer(make_context, tmp_path: Path, seed: int) -> None:
    truth = json.loads((SAMPLE / "expected.json").read_text())["expected"]
    path = tmp_path / "usage.jsonl"
    path.write_text(to_jsonl(generate(dataclasses.replace(Options(), seed=seed))))
    settings = yaml.safe_load((SAMPLE / "settings.yaml").read_text())
    ctx = make_context(AIServicesAutomation, settings=settings, params={"usage": str(path)})
    analysis = AIServicesAutomation().analyze(ctx)
    found = _found(analysis)
    for kind in ("response-cache", "context-cache", "routing", "backoff"):
        assert found.get(kind) == truth[kind], (seed, kind, found.get(kind))
    small = [(s["model"], s["prefix"]) for s in analysis.summary["context_cache_too_small"]]
    assert small == [(t["model"], t["prefix"]) for t in truth["context_cache_too_small"]]
    for opp in analysis.summary["opportunities"]:
        assert opp["monthly_savings"] >= 0 and opp["summary"]


def test_plugin_uses_the_bundled_sample_without_input(make_context) -> None:
    analysis = AIServicesAutomation().analyze(make_context(AIServicesAutomation))
    assert analysis.summary["input"]["sample"] is True
    assert "bundled sample" in analysis.summary["notes"][0]
    risks = {a.kind: a.risk for a in analysis.actions}
    assert risks == {
        "policy-context-cache": Risk.low,
        "policy-routing": Risk.high,
        "policy-response-cache": Risk.medium,
        "policy-backoff": Risk.low,
    }
    models = {r["model"]: r for r in analysis.summary["by_model"]}
    assert set(models) == {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"}
    pro = models["gemini-2.5-pro"]
    assert pro["latency_p50_ms"] < pro["latency_p95_ms"] and pro["throttle_rate"] > 0.01
    assert {r["route"] for r in analysis.summary["by_route"]} == {
        "support-chat",
        "faq",
        "classify-ticket",
        "summarize",
        "tagging",
    }


def test_costs_and_exact_numbers() -> None:
    settings = Settings(models=PRICES)
    rows = [record(input_tokens=1000, cached_input_tokens=400, output_tokens=100)]
    data = usage_from_entries([{"jsonPayload": r} for r in rows], source="t", max_bad_share=0)
    cost = an.request_costs(data, settings.models)
    assert cost[0] == pytest.approx((600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6)


def test_routing_savings_and_thresholds(tmp_path: Path) -> None:
    settings = Settings(models=PRICES, routing={"min_requests": 10}, min_monthly_savings=0)
    base = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    rows = [
        record(timestamp=(base + dt.timedelta(hours=i)).isoformat(), prompt_hash=f"p{i}") for i in range(48)
    ]
    rows += [
        record(
            route="big",
            input_tokens=9000,
            prompt_hash=f"b{i}",
            timestamp=(base + dt.timedelta(hours=i)).isoformat(),
        )
        for i in range(48)
    ]
    data = read_usage_file(write_jsonl(tmp_path / "u.jsonl", rows), max_bad_share=0)
    cost = an.request_costs(data, settings.models)
    factor = an.monthly_factor(data)
    [opp] = an.routing(data, cost, factor, settings)
    assert opp.key == {"route": "r1", "from_model": "m-big"} and opp.entry["to_model"] == "m-small"
    now = 48 * (100 * 2.0 + 10 * 8.0) / 1e6
    after = 48 * (100 * 0.2 + 10 * 0.8) / 1e6
    assert opp.monthly_savings == pytest.approx((now - after) * factor)
    assert factor == pytest.approx(730 / 24 / (47 / 24))


def test_context_cache_from_raw_prompt_text(tmp_path: Path) -> None:
    settings = Settings(
        models=PRICES, context_cache={"min_requests": 5, "chunk_chars": 64}, min_monthly_savings=0
    )
    shared = "You are a support agent. " * 400  # ~10 000 chars = 2 500 tokens at 4 chars/token
    rows = [record(prompt=shared + f"question {i}?", prompt_hash=None) for i in range(10)]
    rows += [record(prompt="short " * 10 + str(i), prompt_hash=None) for i in range(10)]
    data = read_usage_file(write_jsonl(tmp_path / "u.jsonl", rows), max_bad_share=0)
    opps, small = an.context_cache(data, an.monthly_factor(data), settings)
    [opp] = opps
    assert opp.entry["prefix_tokens"] >= 2048 and opp.evidence["requests"] == 10
    assert small == []


def test_malformed_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    rows: list[Any] = [record() for _ in range(200)]
    rows[4] = "{not json"
    rows[9] = record(input_tokens=-5)
    rows[14] = record(status="maybe")
    rows[19] = record(cached_input_tokens=500)
    rows[24] = {k: v for k, v in record().items() if k != "model"}
    data = read_usage_file(write_jsonl(tmp_path / "u.jsonl", rows), max_bad_share=0.05)
    assert data.bad.count == 5 and len(data) == 195
    reasons = dict(data.bad.examples)
    assert sorted(reasons) == [5, 10, 15, 20, 25]
    assert "invalid JSON" in reasons[5] and "input_tokens" in reasons[10] and "status" in reasons[15]
    assert "exceeds input_tokens" in reasons[20] and "missing field 'model'" in reasons[25]
    with pytest.raises(InputError, match="5 of 200 rows are malformed"):
        read_usage_file(tmp_path / "u.jsonl", max_bad_share=0.01)


def test_status_codes_count_by_class() -> None:
    statuses = ["ok", 200, "201", 204, 404, "500", "429", "error"]
    rows = [record(status=s) for s in statuses]
    data = usage_from_entries([{"jsonPayload": r} for r in rows], source="t", max_bad_share=0)
    ok, error, throttled = STATUS_OK, STATUS_ERROR, STATUS_THROTTLED
    assert data.status.tolist() == [ok, ok, ok, ok, error, error, throttled, error]


def test_missing_column_everywhere(tmp_path: Path) -> None:
    rows = [{k: v for k, v in record().items() if k != "latency_ms"} for _ in range(3)]
    with pytest.raises(InputError, match=r"missing column 'latency_ms' \(accepted names: latency_ms\)"):
        read_usage_file(write_jsonl(tmp_path / "u.jsonl", rows), max_bad_share=0.5)


# ----- Cloud Logging over REST, with recorded responses -----


class Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)

    def json(self) -> dict[str, Any]:
        return self._body


class FakeSession:
    def __init__(self, pages: list[Response]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def post(self, url: str, json: dict[str, Any], timeout: float) -> Response:
        assert url == ENTRIES_LIST_URL
        self.calls.append(dict(json))
        return self.pages.pop(0)


def entry(i: int, **payload: Any) -> dict[str, Any]:
    return {
        "insertId": f"1x{i:06d}",
        "logName": "projects/shop/logs/ai-gateway",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "ai-gateway"}},
        "timestamp": f"2025-03-10T10:{i:02d}:00.123456Z",
        "receiveTimestamp": f"2025-03-10T10:{i:02d}:01Z",
        "severity": "INFO",
        "jsonPayload": {k: v for k, v in record(**payload).items() if k != "timestamp"},
    }


def test_cloud_logging_pages_and_filter() -> None:
    session = FakeSession(
        [
            Response(200, {"entries": [entry(1), entry(2)], "nextPageToken": "tok-2"}),
            Response(200, {"entries": [entry(3, status="429")]}),
        ]
    )
    settings = LoggingSettings(project="shop")
    start = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
    end = dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC)
    entries = list(fetch_log_entries(settings, start, end, session=session))
    assert len(entries) == 3
    first, second = session.calls
    assert first["resourceNames"] == ["projects/shop"] and "pageToken" not in first
    assert 'timestamp >= "2025-03-03T00:00:00Z"' in first["filter"]
    assert first["filter"].startswith("(jsonPayload.model:*")
    assert second["pageToken"] == "tok-2"
    data = usage_from_entries(entries, source="cloud-logging:projects/shop", max_bad_share=0)
    assert len(data) == 3 and int(data.status[2]) == 2


def test_cloud_logging_errors_are_classified() -> None:
    settings = LoggingSettings(project="shop")
    now = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    with pytest.raises(TransientError):
        list(fetch_log_entries(settings, now, now, session=FakeSession([Response(503, {"error": {}})])))
    with pytest.raises(LoggingQueryError, match="403"):
        list(fetch_log_entries(settings, now, now, session=FakeSession([Response(403, {"error": {}})])))


def test_plugin_reads_cloud_logging_when_configured(make_context) -> None:
    session = FakeSession([Response(200, {"entries": [entry(i) for i in range(30)]})])
    settings = {"models": {k: v.model_dump() for k, v in PRICES.items()}, "logging": {"project": "shop"}}
    analysis = AIServicesAutomation(logging_session=session).analyze(
        make_context(AIServicesAutomation, settings=settings)
    )
    assert analysis.summary["input"]["source"] == "cloud-logging:projects/shop"
    assert analysis.summary["input"]["requests"] == 30


# ----- the policy file -----


@pytest.fixture
def planned(make_context, tmp_path: Path):
    policy = tmp_path / "conf" / "ai-policy.yaml"
    ctx = make_context(AIServicesAutomation, params={"policy_path": str(policy)})
    ctx.run.mode = Mode.apply
    automation = AIServicesAutomation()
    analysis = automation.analyze(ctx)
    return automation, ctx, analysis, policy


def apply_one(automation: Any, ctx: Any, action: Any) -> None:
    action.rollback = automation.prepare(ctx, action)
    action.result = automation.apply(ctx, action)


def test_policy_apply_verify_rollback_on_a_new_file(planned) -> None:
    automation, ctx, analysis, policy = planned
    for action in analysis.actions:
        apply_one(automation, ctx, action)
        assert automation.verify(ctx, action).ok
    doc = parse(policy.read_text(), str(policy))
    assert [e.route for e in doc.routing] == ["classify-ticket"] and doc.routing[
        0
    ].to_model == "gemini-2.5-flash"
    assert [e.prefix_hash for e in doc.context_cache] == ["support-kb-v12"]
    assert [e.route for e in doc.response_cache] == ["faq"] and [e.model for e in doc.backoff] == [
        "gemini-2.5-pro"
    ]
    assert doc.updated_at == "2025-03-18T06:00:00Z"
    for action in reversed(analysis.actions):
        automation.rollback(ctx, action)
    assert not policy.exists()  # it did not exist before
    for action in analysis.actions:
        automation.rollback(ctx, action)  # twice is harmless
        assert not automation.verify(ctx, action).ok


def test_policy_rollback_keeps_other_content(planned) -> None:
    automation, ctx, analysis, policy = planned
    policy.parent.mkdir(parents=True)
    original = "version: 1\nbackoff:\n- {model: other, max_attempts: 2, initial_seconds: 1, max_seconds: 8}\n"
    policy.write_text(original)
    routing = next(a for a in analysis.actions if a.kind == "policy-routing")
    cache = next(a for a in analysis.actions if a.kind == "policy-response-cache")
    apply_one(automation, ctx, routing)
    apply_one(automation, ctx, cache)
    # undo the earlier action only: the later one and the operator's entry stay
    automation.rollback(ctx, routing)
    doc = parse(policy.read_text(), str(policy))
    assert doc.routing == [] and [e.route for e in doc.response_cache] == ["faq"]
    assert [e.model for e in doc.backoff] == ["other"]
    automation.rollback(ctx, cache)
    # the file was rewritten in between, so only the entry is reverted: same content, our layout
    assert parse(policy.read_text(), str(policy)).model_dump(exclude={"updated_at"}) == parse(
        original, str(policy)
    ).model_dump(exclude={"updated_at"})


def test_policy_refuses_a_broken_file(planned) -> None:
    automation, ctx, analysis, policy = planned
    policy.parent.mkdir(parents=True)
    policy.write_text("version: 2\nrouting: nope\n")
    with pytest.raises(InputError, match="schema version 1"):
        automation.prepare(ctx, analysis.actions[0])
    assert policy.read_text() == "version: 2\nrouting: nope\n"


def test_routing_waits_for_approval_in_production(make_context) -> None:
    from orchestra.gates import Verdict, decide

    ctx = make_context(AIServicesAutomation, environment="production")
    analysis = AIServicesAutomation().analyze(ctx)
    verdicts = {a.kind: decide(a, 3, "production", ctx.environment).verdict for a in analysis.actions}
    assert verdicts["policy-routing"] == Verdict.await_approval
    assert verdicts["policy-context-cache"] == Verdict.apply


# ----- hostile request logs and policy files -----

SECRET = "ORCHESTRA_API_TOKENS=secret-token-123"
PAD = "x" * 45  # pushes what follows past the excerpt bound


def test_request_log_limits_apply_to_the_file_and_to_what_it_decompresses_to(tmp_path: Path) -> None:
    import gzip

    path = write_jsonl(tmp_path / "u.jsonl", [record() for _ in range(50)])
    size = path.stat().st_size
    assert len(read_usage_file(path, max_bad_share=0, max_bytes=size)) == 50
    with pytest.raises(InputError, match=f"^{path}: {size} bytes, larger than the input limit of {size - 1}"):
        read_usage_file(path, max_bad_share=0, max_bytes=size - 1)
    packed = tmp_path / "u.jsonl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert len(read_usage_file(packed, max_bad_share=0, max_bytes=size)) == 50
    with pytest.raises(InputError, match=f"^{packed}: decompresses to more than the input limit"):
        read_usage_file(packed, max_bad_share=0, max_bytes=size - 1)


@pytest.mark.parametrize(
    ("path", "problem"),
    [("/dev/zero", "not a regular file"), ("/dev/urandom", "not a regular file"), ("/", "is a directory")],
)
def test_request_log_devices_and_directories_are_refused(path: str, problem: str) -> None:
    with pytest.raises(InputError, match=f"^{path}: {problem}"):
        read_usage_file(path, max_bad_share=1.0)


def test_request_log_in_latin1_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    path.write_bytes(json.dumps(record(route="caf\xe9"), ensure_ascii=False).encode("latin-1") + b"\n")
    with pytest.raises(InputError, match=rf"^{path}:1: not UTF-8 text"):
        read_usage_file(path, max_bad_share=1.0)


def test_hostile_request_rows_are_bad_rows_quoted_as_excerpts(tmp_path: Path) -> None:
    rows: list[Any] = [record() for _ in range(100)]
    rows[1] = record(status=PAD + SECRET)
    rows[2] = record(model="gemini\x1b[2J")
    rows[3] = record(route="faq\u202e")
    rows[4] = "[" * 50_000
    rows[5] = json.dumps(record(prompt="a\ud800b"))  # written as a \ud800 escape
    rows[6] = record(timestamp=PAD + SECRET)
    rows[7] = record(input_tokens=10, cached_input_tokens=10**300)
    data = read_usage_file(write_jsonl(tmp_path / "u.jsonl", rows), max_bad_share=0.1)
    reasons = dict(data.bad.examples)
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8]
    assert reasons[2] == f"status: '{PAD[:40]}…' is not ok / error / 429 or an HTTP status code"
    assert reasons[3] == "model: empty, not text or holds control characters"
    assert reasons[4].startswith("route: 'faq\\u202e'")
    assert reasons[5] == "invalid JSON: nested too deeply"
    assert "lone surrogate" in reasons[6]
    assert reasons[7].startswith(f"timestamp: '{PAD[:40]}…'")
    assert reasons[8].startswith("cached_input_tokens ('1000") and len(reasons[8]) < 120
    assert all("secret" not in reason for reason in reasons.values())
    assert data.model_names == ["m-big"] and data.route_names == ["r1"]


def test_broken_policy_files_are_refused_with_position_and_excerpts(tmp_path: Path) -> None:
    where = str(tmp_path / "ai-policy.yaml")
    with pytest.raises(InputError) as err:
        parse(f"version: 1\nrouting: *{PAD}secret-token-123\n", where)
    assert str(err.value).startswith(f"{where}:2:10: not valid YAML: alias '*{PAD[:39]}…'")
    assert "secret" not in str(err.value)
    with pytest.raises(InputError) as err:
        parse(f"version: 1\n{PAD}{SECRET}: 1\n", where)
    assert str(err.value).startswith(f"{where}: policy file does not match schema version 1: '{PAD[:40]}…'")
    assert "secret" not in str(err.value)
    with pytest.raises(InputError, match=r":1:4: not valid YAML: tag '!!python/object/apply:os.system'"):
        parse("a: !!python/object/apply:os.system [echo]\n", where)
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)
    )
    with pytest.raises(InputError, match="once aliases are expanded"):
        parse(laughs, where)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (
            lambda p: p.write_bytes(b"version: 1\nrouting: []\n# caf\xe9\n"),
            ":3:6: not valid YAML: .*UTF-8",
        ),
        (lambda p: p.write_text("# padding\n" * 30_000), "the limit for a YAML document"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
    ids=["latin1", "too-large", "directory"],
)
def test_policy_file_is_read_as_a_bounded_input(planned, make, problem: str) -> None:
    automation, ctx, analysis, policy = planned
    policy.parent.mkdir(parents=True)
    make(policy)
    with pytest.raises(InputError, match=problem):
        automation.prepare(ctx, analysis.actions[0])


def test_policy_path_on_a_device_is_refused(make_context) -> None:
    ctx = make_context(AIServicesAutomation, params={"policy_path": "/dev/zero"})
    ctx.run.mode = Mode.apply
    automation = AIServicesAutomation()
    action = automation.analyze(ctx).actions[0]
    with pytest.raises(InputError, match="^/dev/zero: not a regular file"):
        automation.prepare(ctx, action)
