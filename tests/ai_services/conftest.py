"""ai-services tests reuse the RunContext builder of the cost tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cost.conftest import MakeContext, build_context


@pytest.fixture
def make_context(tmp_path: Path) -> MakeContext:
    def make(automation, **kwargs):  # type: ignore[no-untyped-def]
        return build_context(automation, tmp_path, **kwargs)

    return make
