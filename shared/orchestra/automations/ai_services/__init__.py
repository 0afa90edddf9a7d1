"""AI service optimization: per-model / per-route usage report and savings opportunities.

Input is AI request logs: JSON lines (``--usage PATH``) or, in the cloud, Cloud Logging
(``settings.logging``; the ``entries.list`` REST method). With neither, the bundled sample log is
analyzed (and the summary says so). Prices per model come from ``settings.models``.

Opportunities, each with estimated monthly savings and evidence: exact-duplicate prompts
(response caching), long shared prompt prefixes (context caching, only above the model's
minimum cacheable size), routes small enough for a cheaper configured tier (routing), and
sustained 429s (backoff / quota). Apply writes them into a routing and caching policy file
(YAML, schema in ``policy.py``) with rollback; routing changes are high risk (production gates
them for approval), caching medium / low, backoff low.

This module stays cheap to import: numpy and google-auth load inside ``analyze``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...automation import Analysis, Automation, RunContext, Verification
from ...inputs import InputPath, OutputPath
from ...models import Action

if TYPE_CHECKING:
    from ...console.views import RunView
    from ...models import Run


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# Upper bounds: far above any real price list or log, finite, and small enough that per-request
# arithmetic and the arrays sized from them stay reasonable.
MAX_PRICE = 1e6  # USD per 1M tokens
MAX_TOKENS = 10**8
MAX_COUNT = 10**9
MAX_TTL_SECONDS = 30 * 86400


class ModelPrice(Section):
    input_per_mtok: float = Field(ge=0, le=MAX_PRICE, description="USD per 1M uncached input tokens")
    output_per_mtok: float = Field(ge=0, le=MAX_PRICE, description="USD per 1M output tokens")
    cached_input_per_mtok: float | None = Field(
        None, ge=0, le=MAX_PRICE, description="USD per 1M cached input tokens"
    )
    cache_storage_per_mtok_hour: float = Field(
        0, ge=0, le=MAX_PRICE, description="explicit context cache storage"
    )
    tier: int = Field(
        ge=0, le=1000, description="relative size/price (0..1000); routing moves a route to a lower tier"
    )
    min_cached_tokens: int = Field(
        2048, ge=0, le=MAX_TOKENS, description="provider's minimum cacheable prefix"
    )

    @property
    def cached_price(self) -> float:
        return self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok


class LoggingSettings(Section):
    project: str = Field(description="project whose logs hold the AI request entries")
    filter: str = Field(
        "jsonPayload.model:* AND jsonPayload.input_tokens:*",
        description="Logging query selecting the request entries (their jsonPayload has the usage fields)",
    )
    page_size: int = Field(1000, ge=1, le=1000)
    max_entries: int = Field(
        500_000, ge=1, le=10_000_000, description="entries read at most (bounds memory; <= 10 M)"
    )


class ResponseCacheSettings(Section):
    ttl_seconds: int = Field(
        3600,
        gt=0,
        le=MAX_TTL_SECONDS,
        description="a repeat counts as a hit only within this time (seconds, <= 30 days)",
    )
    min_duplicate_share: float = Field(0.05, ge=0, le=1)
    min_duplicates: int = Field(20, ge=1, le=MAX_COUNT)


class ContextCacheSettings(Section):
    min_requests: int = Field(
        20, ge=2, le=MAX_COUNT, description="requests sharing a prefix before caching pays"
    )
    ttl_seconds: int = Field(3600, gt=0, le=MAX_TTL_SECONDS, description="seconds, <= 30 days")
    chars_per_token: float = Field(4.0, gt=0, le=100, description="token estimate for raw prompt text")
    chunk_chars: int = Field(512, ge=16, le=1_000_000, description="prefix granularity for raw prompt text")


class RoutingSettings(Section):
    percentile: float = Field(90, gt=0, le=100)
    max_input_tokens: int = Field(
        2000, ge=1, le=MAX_TOKENS, description="route's input tokens at the percentile"
    )
    max_output_tokens: int = Field(300, ge=1, le=MAX_TOKENS)
    max_error_rate: float = Field(0.02, ge=0, le=1, description="routes already failing are not moved")
    min_requests: int = Field(100, ge=1, le=MAX_COUNT)
    targets: dict[str, str] = Field(
        default_factory=dict, description="model -> cheaper model; default: the next lower tier"
    )


class ThrottlingSettings(Section):
    bucket_minutes: int = Field(60, ge=1, le=1440, description="bucket length (minutes, <= 1 day)")
    min_share: float = Field(0.02, gt=0, le=1, description="429 share that makes a bucket throttled")
    min_buckets: int = Field(3, ge=1, le=10_000, description="throttled buckets that make it sustained")
    min_requests_per_bucket: int = Field(20, ge=1, le=MAX_COUNT)
    min_throttled_per_bucket: int = Field(
        3, ge=1, le=MAX_COUNT, description="one stray 429 does not make a period"
    )


class Settings(Section):
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    logging: LoggingSettings | None = None
    history_days: int = Field(7, ge=1, le=30, description="days read from Cloud Logging")
    max_bad_row_share: float = Field(0.01, ge=0, le=1)
    policy_path: str = Field("ai-policy.yaml", description="policy file that apply writes")
    response_cache: ResponseCacheSettings = ResponseCacheSettings()
    context_cache: ContextCacheSettings = ContextCacheSettings()
    routing: RoutingSettings = RoutingSettings()
    throttling: ThrottlingSettings = ThrottlingSettings()
    min_monthly_savings: float = Field(1.0, ge=0, le=1e12)

    @model_validator(mode="after")
    def _targets_known(self) -> Settings:
        for source, target in self.routing.targets.items():
            for name in (source, target):
                if name not in self.models:
                    raise ValueError(f"routing.targets: model {name!r} has no price in models")
        return self


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    usage: InputPath | None = Field(None, description="AI request log, JSON lines (.gz allowed)")
    policy_path: OutputPath | None = Field(
        None, description="policy file to write (default: settings.policy_path); local triggers only"
    )


class AIServicesAutomation(Automation):
    name: ClassVar[str] = "ai-services"
    description: ClassVar[str] = "AI usage report; response/context caching, cheaper routing, 429 backoff"
    Settings: ClassVar[type[BaseModel]] = Settings
    Params: ClassVar[type[BaseModel]] = Params
    # Analysis reads the request log (a file or Cloud Logging's entries.list) and only names the
    # policy file; apply writes it.
    read_only_analysis: ClassVar[bool] = True

    def __init__(self, *, logging_session: Any = None) -> None:
        self.logging_session = logging_session

    def analyze(self, ctx: RunContext[Settings, Params]) -> Analysis:
        from .engine import analyze

        return analyze(ctx, logging_session=self.logging_session)

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from .policy import prepare

        return prepare(action)

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from .policy import apply

        return apply(action, now=ctx.clock.now())

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        from .policy import verify

        return verify(action)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        from .policy import rollback

        rollback(action)

    def render(self, run: Any, console: Any) -> None:
        from .render import render

        render(run, console)

    def run_view(self, run: Run) -> RunView | None:
        """Monthly cost and P95 latency per model and per route × model."""
        from .view import run_view

        return run_view(run)
