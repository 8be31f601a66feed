"""Run one workload in a fresh process and print its figures as JSON (used by the scale benchmark).

``python -m bench.child < spec.json`` where the spec is ``{"workload": "bare" | "kling_lab",
"inputs": [...], "concurrency": N, "dir": PATH, "bare_options": {...}}``; the emulator's
environment is inherited from the parent. A fresh process makes its peak RSS that of exactly
this run plus the imports it needs (the bare loop imports no kling_lab).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .measure import peak_rss_mb, timed


def run_spec(spec: dict[str, Any]) -> dict[str, float]:
    inputs, concurrency, directory = spec["inputs"], spec["concurrency"], Path(spec["dir"])
    if spec["workload"] == "bare":
        from .bare import bare_loop

        sample, _ = timed(lambda: bare_loop(inputs, concurrency, directory, **spec["bare_options"]))
    else:
        from .workloads import kling_lab_run

        sample, _ = timed(lambda: kling_lab_run(inputs, concurrency, directory))
    return {"wall_s": sample.wall_s, "cpu_s": sample.cpu_s, "peak_rss_mb": peak_rss_mb()}


if __name__ == "__main__":
    print(json.dumps(run_spec(json.load(sys.stdin))))
