"""What a judge call asks and how its answer is read: the judge's side of the runner's judge job kind.

A :class:`JudgeCall` is built by a judge (:mod:`kling_lab.judges`, a higher layer) and carried by the
runner (:mod:`kling_lab.runner.judging`). Where the runner's :class:`~kling_lab.runner.job.Job` uses a
request, a JudgeCall answers the same questions (``endpoint_id``, ``cost_usd``, ``local_images``,
``sent_arguments``, ...): its clips are the files uploaded to fal storage, once ever each.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kling_lab._version import __version__
from kling_lab.models import ImageRef
from kling_lab.models.judging import JudgeEndpoint
from kling_lab.runner.rows import current_user, new_run_id
from kling_lab.util.text import canonical_json

KIND = "judge"  # the journal's ``sweep.kind`` of judge calls


class InvalidOutput(ValueError):
    """The judge's answer is not what the rubric asks for (no JSON, a score out of range, ...)."""


@dataclass(frozen=True)
class Parsed:
    """A validated answer: scores by dimension (numbers or lists), the explanation, a pairwise preference."""

    scores: Mapping[str, Any]
    explanation: str | None = None
    preferred: str | None = None  # pairwise: "A" | "B" | "tie"


@dataclass(frozen=True)
class Clip:
    """One clip a call shows: its run, its video (local file, sha256, length) and fal's URL of it, if any."""

    run_id: str
    sha256: str
    path: str
    seconds: float
    result_url: str | None = None  # fal's output URL of its run: used instead of an upload while it answers


@dataclass(eq=False)
class JudgeCall:
    """What to ask fal about one clip (or a pair) and how to read the answer.

    Where the runner's :class:`~kling_lab.runner.job.Job` uses a request, a JudgeCall answers the same
    questions (``endpoint_id``, ``cost_usd``, ``local_images``, ``sent_arguments``, ...): its clips
    are the files uploaded to fal storage, once ever each (the store's upload cache)."""

    judge: str
    kind: str  # "single" | "pairwise"
    rubric_hash: str
    endpoint: JudgeEndpoint
    arguments: dict[str, Any]  # the input without the clips' URLs
    clips: tuple[Clip, ...]
    price: Decimal  # the reservation: exact, or an upper bound for per-token billing
    parse: Callable[[str], Parsed]  # raises InvalidOutput
    ask_again: Callable[[dict[str, Any], str], dict[str, Any]]  # (arguments, what was wrong) -> arguments
    columns: Mapping[str, Any] = field(default_factory=dict)  # sweep_id, prompt, model
    resume_meta: Mapping[str, Any] = field(default_factory=dict)  # journaled: how to rebuild the judge
    reuse: dict[int, str] = field(default_factory=dict)  # clip index -> a URL fal can fetch it from now
    retry_error: str | None = None  # set on the call that asks again

    # -- identity --------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """The cache key: judge, rubric hash and the clips' sha256 in the order shown (32 hex chars)."""
        key = {
            "judge": self.judge,
            "kind": self.kind,
            "rubric": self.rubric_hash,
            "videos": [c.sha256 for c in self.clips],
        }
        return hashlib.sha256(canonical_json(key).encode("utf-8")).hexdigest()[:32]

    @property
    def retry_fingerprint(self) -> str:
        """The journal key of the second call (asked again after an invalid answer)."""
        return hashlib.sha256(f"{self.fingerprint}#again".encode()).hexdigest()[:32]

    # -- what Job asks of a request ---------------------------------------------------------
    @property
    def endpoint_id(self) -> str:
        return self.endpoint.id

    @property
    def alias(self) -> str:
        return f"judge:{self.judge}"

    @property
    def duration_s(self) -> float:
        return sum(c.seconds for c in self.clips)

    def cost_usd(self) -> float:
        return float(self.price)

    def billed(self, result: Any) -> Decimal:
        """What this call cost, from fal's answer (per-token endpoints report it) or the price rule."""
        return self.endpoint.billed_usd(result, self.price)

    def local_images(self) -> dict[str, ImageRef]:
        """The clips to upload to fal storage (all but those fal can fetch from their result URL now)."""
        return {
            f"video_{i}": ImageRef(source=c.path, sha256=c.sha256, bytes=_size(c.path), format="MP4")
            for i, c in enumerate(self.clips)
            if i not in self.reuse
        }

    def sent_arguments(self, urls: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The input sent: the clips' URLs (uploads or live result URLs) in their order."""
        urls = dict(urls or {})
        for i in range(len(self.clips)):
            if i not in self.reuse:
                self.reuse[i] = urls[f"video_{i}"]  # a second call sends the same URLs again
        return self.endpoint.with_videos(self.arguments, [self.reuse[i] for i in range(len(self.clips))])

    def again(self, error: str) -> JudgeCall:
        """The call that asks once more after an invalid answer (same clips, same URLs)."""
        return dataclasses.replace(
            self, arguments=self.ask_again(self.arguments, error), reuse=dict(self.reuse), retry_error=error
        )

    # -- the judgement row -----------------------------------------------------------------
    def base_row(self, backend: str) -> dict[str, Any]:
        first = self.clips[0]
        other = self.clips[1] if len(self.clips) > 1 else None
        return {
            "judgement_id": new_run_id(),
            "run_id": first.run_id,
            "video_sha256": first.sha256,
            "other_run_id": other.run_id if other else None,
            "other_video_sha256": other.sha256 if other else None,
            "sweep_id": self.columns.get("sweep_id"),
            "prompt": self.columns.get("prompt"),
            "judge": self.judge,
            "kind": self.kind,
            "rubric_hash": self.rubric_hash,
            "fingerprint": self.fingerprint,
            "endpoint": self.endpoint.id,
            "model": self.arguments.get("model"),
            "backend": backend,
            "placeholder": backend == "emulator",
            "arguments_json": canonical_json(self.arguments),
            "cost_usd": 0.0,
            "tries": 1,
            "kling_lab_version": __version__,
            "user": current_user(),
        }

    def meta(self) -> dict[str, Any]:
        """What the journal keeps beside the request (the runner's ``sweep`` field)."""
        return {
            "kind": KIND,
            "judge_fingerprint": self.fingerprint,
            "clips": [dataclasses.asdict(c) for c in self.clips],
            **self.resume_meta,
        }


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


__all__ = ["KIND", "Clip", "InvalidOutput", "JudgeCall", "Parsed"]
