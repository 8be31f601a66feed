"""Local judges (``qc``): computed here, for free, written straight to the ``judgements`` dataset.

Nothing is sent anywhere, so there is no runner, budget or journal: each clip not judged before with
this judge's rubric hash gets one row (``endpoint`` and ``backend`` ``local``, ``cost_usd`` 0); a clip
that cannot be read gets a ``failed`` row, and the pass goes on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kling_lab._version import __version__
from kling_lab.judges.base import LocalJudge
from kling_lab.judges.selection import Judged
from kling_lab.runner.judge_call import Clip
from kling_lab.runner.rows import current_user, new_run_id
from kling_lab.store import judgements as dataset
from kling_lab.store.run_store import RunStore
from kling_lab.util.clock import utcnow
from kling_lab.util.text import canonical_json


def local_fingerprint(the_judge: Any, clip: Clip) -> str:
    """The cache key, built as a fal judge call's is (``JudgeCall.fingerprint``)."""
    key = {"judge": the_judge.name, "kind": "single", "rubric": the_judge.rubric_hash, "videos": [clip.sha256]}
    return hashlib.sha256(canonical_json(key).encode("utf-8")).hexdigest()[:32]


def judge_locally(
    the_judge: LocalJudge, items: Sequence[Judged], store: RunStore, *, force: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """Judge every clip not judged before (``force``: all); the rows written and how many were cached."""
    fingerprints = {item.clips[0].sha256: local_fingerprint(the_judge, item.clips[0]) for item in items}
    cached = {} if force else dataset.cached_ok(store, fingerprints.values(), "local")
    rows: list[dict[str, Any]] = []
    skipped = 0
    for item in items:
        run, clip = item.runs[0], item.clips[0]
        fingerprint = fingerprints[clip.sha256]
        if fingerprint in cached:
            skipped += 1
            continue
        started = utcnow()
        base = {
            "judgement_id": new_run_id(),
            "run_id": clip.run_id,
            "video_sha256": clip.sha256,
            "sweep_id": run.get("sweep_id"),
            "prompt": run.get("prompt"),
            "judge": the_judge.name,
            "kind": "single",
            "rubric_hash": the_judge.rubric_hash,
            "fingerprint": fingerprint,
            "endpoint": "local",
            "backend": "local",
            "placeholder": False,
            "tries": 1,
            "cost_usd": 0.0,
            "submitted_at": started,
            "kling_lab_version": __version__,
            "user": current_user(),
        }
        try:
            parsed = the_judge.score(run, Path(clip.path))
        except Exception as exc:  # noqa: BLE001 - one unreadable clip is a failed row, not a lost pass
            rows.append(
                {
                    **base,
                    "status": "failed",
                    "error_type": type(exc).__name__,
                    "error": str(exc)[:2000],
                    "logged_at": utcnow(),
                }
            )
            continue
        done = utcnow()
        rows.append(
            {
                **base,
                "status": "ok",
                "scores_json": canonical_json(dict(parsed.scores)),
                "explanation": parsed.explanation,
                "completed_at": done,
                "logged_at": done,
                "total_s": (done - started).total_seconds(),
            }
        )
    dataset.append_judgements(store, rows)
    return rows, skipped


__all__ = ["judge_locally", "local_fingerprint"]
