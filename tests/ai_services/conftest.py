"""ai-services tests reuse the RunContext builder of the cost tests."""

from cost.conftest import make_context

__all__ = ["make_context"]
