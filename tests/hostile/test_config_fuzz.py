"""Property tests: whatever the text, bytes or data, ``parse_config`` returns a Config or raises
ConfigError — never another exception, never a crash. Examples are derandomized (the same on
every run) and kept few enough to run in seconds."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from orchestra.config import Config, default_config_text, parse_config
from orchestra.errors import ConfigError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DEFAULT = yaml.safe_load(default_config_text())


def outcome(data: str | bytes) -> Config | ConfigError:
    try:
        return parse_config(data, "fuzz")
    except ConfigError as exc:
        # Every problem is one printable line, whatever the keys and values were.
        assert exc.problems and all(isinstance(p, str) and p.isprintable() for p in exc.problems)
        return exc


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.text(max_size=40),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)),
)
yaml_data = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.one_of(st.text(max_size=20), st.integers(), st.booleans()), children, max_size=6),
    ),
    max_leaves=40,
)
# Fragments that stress the YAML grammar: flow and block collections, anchors, aliases, tags.
yaml_pieces = st.lists(
    st.sampled_from(
        [
            "[", "]", "{", "}", ",", ": ", "- ", "\n", "  ", "&a ", "*a", "&b ", "*b", "!!str ", "!!map ",
            "!!python/name:os.system ", "!x ", "? ", "|\n", ">\n", "'", '"', "#", "---\n", "...\n",
            "<<: ", "1e300", ".inf", ".nan", "-50", "0", "99999999999", "2026-13-45", "environments",
            "development", "runner", "automations", "thresholds", "default_environment", "%YAML 1.1\n",
            "\ufeff", "\t", "\x85", "\u2028",
        ]
    ),
    max_size=60,
).map("".join)  # fmt: skip


def set_at(document: dict[str, Any], path: list[int], value: Any) -> dict[str, Any]:
    """The default configuration with the node chosen by ``path`` (indices into each level's
    keys) replaced by ``value``."""
    out = copy.deepcopy(document)
    node: Any = out
    for step in path:
        if isinstance(node, dict) and node:
            key = sorted(node, key=str)[step % len(node)]
            if not isinstance(node[key], dict | list) or not node[key]:
                node[key] = value
                return out
            node = node[key]
        elif isinstance(node, list) and node:
            index = step % len(node)
            if not isinstance(node[index], dict | list) or not node[index]:
                node[index] = value
                return out
            node = node[index]
    if isinstance(node, dict):
        node["fuzz"] = value
    return out


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    outcome(text)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes(data: bytes) -> None:
    outcome(data)


@FUZZ
@given(yaml_pieces)
def test_yaml_shaped_text(text: str) -> None:
    outcome(text)
    outcome("environments: {development: {}}\n" + text)


@FUZZ
@given(yaml_data)
@example({"\n": None})
@example({"environments": {"dev\u2028": {}}, "default_environment": "x"})
def test_any_yaml_data(data: Any) -> None:
    outcome(yaml.safe_dump(data, allow_unicode=True))


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8), yaml_data)
def test_the_default_configuration_with_any_value_anywhere(path: list[int], value: Any) -> None:
    result = outcome(yaml.safe_dump(set_at(DEFAULT, path, value), allow_unicode=True))
    if isinstance(result, Config):
        # Whatever was accepted serializes back and is accepted again as it was shown.
        shown = yaml.safe_dump(result.model_dump(mode="json"), sort_keys=False)
        assert isinstance(outcome(shown), Config)


def test_the_default_configuration_is_accepted_and_a_replaced_value_is_seen() -> None:
    assert isinstance(outcome(default_config_text()), Config)
    changed = set_at(DEFAULT, [sorted(DEFAULT).index("default_environment")], "nowhere")
    assert changed["default_environment"] == "nowhere"
    refused = outcome(yaml.safe_dump(changed))
    assert isinstance(refused, ConfigError)
    assert any(p.startswith("default_environment") or "default_environment:" in p for p in refused.problems)
