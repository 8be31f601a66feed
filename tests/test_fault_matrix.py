"""The fault matrix in small (tools/fault_matrix.py): SIGKILL × faults, then resume, re-run, reconcile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_trials_count_no_double_payment_no_lost_clip_no_overspend():
    # Trials 3 (lost submit answers, killed at 1.14 s) and 6 (every fault at once, killed at 0.52 s).
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "fault_matrix.py"),
            "--trials",
            "7",
            "--only",
            "3",
            "--only",
            "6",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    totals = report["totals"]
    assert totals["trials"] == 2 and totals["jobs"] > 0
    assert totals["double_payments"] == 0 and totals["paid_without_video"] == 0 and totals["trials_over_cap"] == 0
    assert {t["profile"] for t in report["trials"]} == {"lost-submit", "all"}
