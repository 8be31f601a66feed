"""How the emulator behaves: timing, render size, and deterministic fault injection.

Every fault decision is a pure function of the config: ``sha256(seed, key, call,
ordinal)`` mapped to a uniform number in [0, 1). ``key`` is stable for a job (its
canonical-input hash plus the submission ordinal of that input), ``ordinal`` counts
that call for that key, so the same seed and the same calls give the same faults
whatever the thread scheduling.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

Call = Literal["submit", "status", "result", "cancel", "download"]
PlatformScope = Literal["admin", "api", "none"]
HttpFault = Literal["drop", "429", "500", "503"]
CALLS: frozenset[Call] = frozenset({"submit", "status", "result", "cancel", "download"})
HTTP_FAULTS: tuple[HttpFault, ...] = ("drop", "429", "500", "503")

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class EmulatorConfig(BaseModel):
    """Knobs of the local fal emulator (all times in seconds, all rates probabilities).

    Frozen: change a running server's config with ``EmulatorServer.configure(**changes)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    queue_delay_s: float = Field(1.0, ge=0.0, le=3600.0, description="min time a job stays IN_QUEUE")
    service_time_s: float = Field(3.0, ge=0.0, le=3600.0, description="min time a job stays IN_PROGRESS")
    concurrency: int = Field(4, ge=1, le=256, description="jobs IN_PROGRESS at once")
    render_scale: float = Field(1.0, ge=0.05, le=1.0, description="1.0 = Kling's 720p sizes")
    fps: int = Field(24, ge=1, le=60)
    seed: int = 0
    result_ttl_s: float = Field(3600.0, gt=0.0, description="results expire after this (fal: an hour)")
    file_ttl_s: float = Field(7 * 86400.0, gt=0.0, description="output files expire after this (fal: days)")
    blind: bool = Field(
        True,
        description="placeholders show a neutral clip code, not the parameters (A/B votes stay blind); "
        "False burns in the prompt, cfg_scale and negative prompt",
    )
    accepted_key_sha256: list[str] | None = Field(
        None,
        description="SHA-256 digests of the Authorization values accepted (as in stats()['authorization']); "
        "None accepts any 'Key …'; any other value gets 401, as a revoked key does at fal",
    )
    hold_submit_responses: bool = Field(
        False,
        description="a submit creates its job at once but its answer (an error answer too) waits until this is False "
        "again (a test holds a submit in flight: fal has the job, the client has no id yet)",
    )

    typed_completion_errors: bool = Field(
        True,
        description="False: a failed request's COMPLETED status carries its error but no error_type (fal-client "
        "reads both as optional; fal documents a type only for request errors, model errors type their detail)",
    )
    platform_scope: PlatformScope = Field(
        "admin",
        description="what the key may read on the platform API: admin (requests and usage), api (requests; "
        "usage answers 403, as for an API-scope key at fal), none (both 403)",
    )

    rate_429: Probability = 0.0
    retry_after_s: float = Field(1.0, ge=0.0, le=3600.0, description="the Retry-After of a 429, as fal sends it")
    rate_500: Probability = 0.0
    rate_503: Probability = 0.0
    rate_drop: Probability = 0.0
    rate_lost_submit: Probability = 0.0
    rate_content_policy: Probability = 0.0
    rate_truncated_video: Probability = 0.0
    rate_bad_judge_output: Probability = Field(0.0, description="judge endpoints answer without valid JSON")
    fault_calls: set[Call] = Field(default_factory=lambda: set(CALLS))
    content_policy_keywords: list[str] = Field(default_factory=lambda: ["[blocked]"])
    price_overrides: dict[str, float] = Field(
        default_factory=dict, description="endpoint id -> unit price the pricing API answers instead of the registry's"
    )

    @field_serializer("fault_calls")
    def _sorted_calls(self, calls: set[str]) -> list[str]:
        return sorted(calls)

    @model_validator(mode="after")
    def _http_rates_fit(self) -> EmulatorConfig:
        total = self.rate_429 + self.rate_500 + self.rate_503 + self.rate_drop
        if total > 1.0 + 1e-9:
            raise ValueError(f"rate_429 + rate_500 + rate_503 + rate_drop must be at most 1, got {total:g}")
        return self

    # -- deterministic decisions ------------------------------------------------------------
    def uniform(self, key: str, call: str, ordinal: int) -> float:
        """A uniform number in [0, 1) fixed by (seed, key, call, ordinal)."""
        digest = hashlib.sha256(f"{self.seed}|{key}|{call}|{ordinal}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def http_fault(self, call: str, key: str, ordinal: int) -> HttpFault | None:
        """The infrastructure fault (if any) for the ``ordinal``-th ``call`` on ``key``."""
        if call not in self.fault_calls:
            return None
        u = self.uniform(key, call, ordinal)
        edge = 0.0
        for fault in HTTP_FAULTS:
            edge += getattr(self, f"rate_{fault}")
            if u < edge:
                return fault
        return None

    def chance(self, rate: float, key: str, event: str, ordinal: int = 0) -> bool:
        """True with probability ``rate``, decided by (seed, key, event, ordinal)."""
        return rate > 0.0 and self.uniform(key, event, ordinal) < rate

    def blocks_prompt(self, prompt: str) -> bool:
        """True when the prompt holds a content-policy keyword (case-insensitive)."""
        lowered = prompt.lower()
        return any(word.lower() in lowered for word in self.content_policy_keywords if word)
