"""`python -m bench --quick` (the CI smoke test of the benchmarks): it completes and reports every figure.

Never asserts on times: the machine may be shared and slow; the figures are for people.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("overhead", "concurrency", "scale", "runlog", "cache", "qc", "query", "adaptive")
EXPECTED = {  # a few figures each benchmark must report (keys are stable across --quick and full)
    "overhead": {"wall_ratio", "cpu_ratio", "cpu_ratio_with_emulator", "cpu_ratio_no_media"},
    "concurrency": {"wall_over_ideal", "bare_wall_over_ideal"},
    "scale": {"peak_rss_mb", "requests_per_s", "wall_s", "cpu_s"},
    "runlog": {
        "append_ms_per_row",
        "load_small_s",
        "load_large_s",
        "single_files_before",
        "single_files_after",
        "single_load_after_s",
        "run_in_big_store_extra_s",
    },
    "cache": {"repeat_submissions", "resume_duplicate_submissions", "resume_ok_rows"},
    "qc": {"cpu_s"},
    "query": {"group_by_s", "group_by_compacted_s", "load_runs_s"},
    "adaptive": {"clip_ratio", "wrong_pick_rate", "vote_ratio", "fixed_n", "noise_cv"},
}


@pytest.mark.slow
def test_quick_bench_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FAL_QUEUE_RUN_HOST", "FAL_RUN_HOST", "KLING_LAB_EMULATOR", "FAL_KEY")
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["meta"]["quick"] is True
    assert list(results["sections"]) == list(SECTIONS)
    for name, section in results["sections"].items():
        assert section["error"] is None, (name, section["error"])
        figures = section["figures"]
        assert EXPECTED[name] <= set(figures), (name, EXPECTED[name] - set(figures))
        for key, figure in figures.items():
            assert math.isfinite(figure["value"]), (name, key, figure)
            assert figure["passed"] in (True, False, None)
            assert (figure["passed"] is None) == (figure["target"] is None)
    for line in ("targets PASS", "1. Overhead", "6. QC"):
        assert line in proc.stdout
    cache = {key: figure["value"] for key, figure in results["sections"]["cache"]["figures"].items()}
    assert cache["repeat_submissions"] == 0 and cache["repeat_cache_hits"] == 4  # --quick: 4 requests
    assert cache["resume_duplicate_submissions"] == 0 and cache["resume_duplicate_downloads"] == 0
    assert cache["resume_ok_rows"] == 4 and cache["killed_in_flight"] >= 1
