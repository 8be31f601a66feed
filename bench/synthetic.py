"""Synthetic run-log rows: realistic values in every column a real ok/failed row fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kling_lab.request import ENDPOINT
from kling_lab.store.schema import RUN_SCHEMA

PROMPTS = [f"A red fox trotting through fresh snow at dawn, variant {i}, cinematic, 35 mm" for i in range(50)]
START = datetime(2025, 1, 1, tzinfo=UTC)


def synthetic_row(i: int) -> dict[str, Any]:
    """Row ``i``: unique run_id and request_id, one sweep per 100 rows, 1 in 20 failed."""
    failed = i % 20 == 7
    submitted = START + timedelta(seconds=7 * i)
    row: dict[str, Any] = {
        "run_id": f"{i:032x}",
        "sweep_id": f"bench-{i // 100:06d}",
        "experiment": "bench",
        "sweep_index": i % 100,
        "fingerprint": f"{(i * 2654435761) % 2**128:032x}",
        "endpoint": ENDPOINT,
        "backend": "emulator",
        "request_id": f"00000000-0000-4000-8000-{i:012x}",
        "prompt": PROMPTS[i % 50],
        "negative_prompt": "blur, distort, and low quality",
        "cfg_scale": round((i % 11) / 10, 1),
        "aspect_ratio": ("16:9", "9:16", "1:1")[i % 3],
        "duration_s": 5,
        "repeat": i % 3,
        "status": "failed" if failed else "ok",
        "cache_hit": False,
        "attempts": 1,
        "submitted_at": submitted,
        "started_at": submitted + timedelta(seconds=30),
        "completed_at": submitted + timedelta(seconds=330),
        "logged_at": submitted + timedelta(seconds=332),
        "queue_s": 30.0,
        "inference_s": 300.0 + i % 17,
        "total_s": 330.0 + i % 17,
        "cost_usd": 0.0 if failed else 1.4,
        "kling_lab_version": "0.1.0",
        "user": ("ana", "bo", "cy")[i % 3],
    }
    if failed:
        row.update(error_type="content_policy_violation", error="The prompt was flagged by the content checker.")
    else:
        sha = f"{i:064x}"
        row.update(
            download_s=1.5,
            video_url=f"https://v3.fal.media/files/x/{sha}.mp4",
            video_path=f"videos/{sha[:2]}/{sha}.mp4",
            video_sha256=sha,
            video_bytes=4_000_000 + i,
            width=1280,
            height=720,
            fps=24.0,
            frames=120,
            video_duration_s=5.0,
            codec="h264",
            qc_motion=3.0 + i % 7,
            qc_flicker=0.2,
            qc_sharpness=120.0 + i % 13,
            qc_black_frames=0.0,
            qc_frozen_frames=0.0,
            qc_scene_cuts=0.0,
        )
    return {k: v for k, v in row.items() if k in RUN_SCHEMA.names}


def synthetic_rows(start: int, count: int) -> list[dict[str, Any]]:
    return [synthetic_row(i) for i in range(start, start + count)]
