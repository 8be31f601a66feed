"""The fault matrix: SIGKILL at a random moment × fal faults, then resume, re-run, reconcile — and count.

Each trial, against the local emulator (in this process; the CLI runs in subprocesses):

1. the emulator is reset with one fault profile (429 with Retry-After, 5xx, dropped
   connections, lost submit answers, download outages, truncated videos, or all of them);
2. ``kling-lab run SWEEP --max-cost CAP`` starts, and is SIGKILLed at a random moment (some
   trials let it finish);
3. ``kling-lab resume`` and a re-run of the same sweep (same cap) go on with the faults still on;
4. the faults are switched off: ``kling-lab resume``, ``kling-lab reconcile`` (adopts orphans fal
   lists), ``kling-lab resume`` again.

Then it counts, from the emulator's own records and the store:

- **double payments**: a fingerprint with more than one billed job, adopted orphans (rows with
  ``adopted``: found through fal's platform API by a run, a resume or ``reconcile``) not counted —
  an orphan is a submit whose answer was lost (or whose process died with the POST on the wire);
  each one must be found, see next;
- **paid clips without a video**: billed jobs with no ``ok`` row and video in the store after the
  final resume (an orphan ``reconcile`` failed to find shows up here);
- **spend over the cap**: what the emulator billed for the trial's sweep, above ``--max-cost``.

All three must be 0. ``python tools/fault_matrix.py --trials 24`` prints one line per trial and
the totals (``--json`` for machine-readable output); the exit status is 1 if any count is not 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PROFILES: dict[str, dict[str, Any]] = {
    "429": {"rate_429": 0.3, "retry_after_s": 0.2},
    "5xx": {"rate_500": 0.15, "rate_503": 0.15},
    "drop": {"rate_drop": 0.25},
    "lost-submit": {"rate_lost_submit": 0.4},
    "download": {"rate_503": 0.6, "fault_calls": ["download"]},
    "truncated": {"rate_truncated_video": 0.6},
    "all": {
        "rate_429": 0.08,
        "retry_after_s": 0.2,
        "rate_500": 0.05,
        "rate_503": 0.05,
        "rate_drop": 0.07,
        "rate_lost_submit": 0.2,
        "rate_truncated_video": 0.2,
    },
}
BASE = {"queue_delay_s": 0.1, "service_time_s": 0.6, "render_scale": 0.25, "concurrency": 3}
PRICE = 1.40  # a 5 s Kling 2.0 Master clip


@dataclass
class Trial:
    """One trial's setup and its counts."""

    index: int
    profile: str
    seed: int
    kill_after_s: float | None
    cap_usd: float
    killed: bool = False
    billed_usd: float = 0.0
    jobs: int = 0
    orphans_adopted: int = 0
    double_payments: int = 0
    paid_without_video: int = 0
    over_cap_usd: float = 0.0
    exit_codes: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.double_payments == 0 and self.paid_without_video == 0 and self.over_cap_usd <= 1e-9

    def line(self) -> str:
        kill = f"kill@{self.kill_after_s:.2f}s" if self.kill_after_s is not None else "no kill  "
        return (
            f"#{self.index:<3} {self.profile:<11} seed {self.seed:<4} {kill} {'killed' if self.killed else 'ended '} "
            f"cap ${self.cap_usd:5.2f} billed ${self.billed_usd:5.2f} jobs {self.jobs:>2} orphans {self.orphans_adopted} "
            f"| double {self.double_payments} paid-without-video {self.paid_without_video} "
            f"over-cap ${self.over_cap_usd:.2f} exits {self.exit_codes}"
        )


def sweep_text(name: str, n: int) -> str:
    cfgs = ", ".join(f"{0.05 + 0.9 * i / max(1, n - 1):.3f}" for i in range(n))
    return f"name: {name}\nprompt: a paper lantern drifting over a river\ngrid: {{cfg_scale: [{cfgs}]}}\n"


STEP_TIMEOUT_S = 300.0
LOGS: Path | None = None  # --keep: each step's output is written here


def cli(step: str, *args: str) -> int:
    """Run one kling-lab command to its end (``-v``: its log goes to ``LOGS/<step>.log`` with --keep)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_lab.cli", "-v", *args, *(["--no-progress"] if args[0] != "reconcile" else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        out, err = proc.communicate(timeout=STEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # a step that hangs is a finding: stop it like Ctrl-C, keep its log
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        err += f"\n[fault_matrix: {step} did not end within {STEP_TIMEOUT_S:g} s]"
    if LOGS is not None:
        (LOGS / f"{step}.log").write_text(out + err)
    return proc.returncode


def run_trial(server: Any, trial: Trial, work: Path, requests: int) -> Trial:
    from kling_lab.backends.emulator import EmulatorConfig
    from kling_lab.store.run_store import RunStore

    store = work / f"store-{trial.index}"
    sweep = work / f"sweep-{trial.index}.yaml"
    sweep.write_text(sweep_text(f"matrix{trial.index}", requests))
    faults = {**PROFILES[trial.profile]}
    server.reset(EmulatorConfig(**BASE, seed=trial.seed, **faults))
    common = ["--store", str(store)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_lab.cli", "run", str(sweep), *common, "--max-cost", f"{trial.cap_usd}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        proc.wait(timeout=trial.kill_after_s if trial.kill_after_s is not None else 300)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        trial.killed = True
    trial.exit_codes.append(proc.returncode)
    n = trial.index
    trial.exit_codes.append(cli(f"{n}-resume", "resume", *common))
    trial.exit_codes.append(cli(f"{n}-rerun", "run", str(sweep), *common, "--max-cost", f"{trial.cap_usd}"))
    server.configure(**{k: 0.0 for k in EmulatorConfig.model_fields if k.startswith("rate_")})
    trial.exit_codes.append(cli(f"{n}-final-resume", "resume", *common))
    trial.exit_codes.append(cli(f"{n}-reconcile", "reconcile", *common))
    trial.exit_codes.append(cli(f"{n}-last-resume", "resume", *common))
    count(server.stats(), RunStore(store), trial)
    return trial


def count(stats: dict[str, Any], store: Any, trial: Trial) -> None:
    jobs = stats["jobs_by_request"]
    billed = {rid: job for rid, job in jobs.items() if job["state"] == "ok"}
    trial.jobs = len(jobs)
    trial.billed_usd = round(sum(job["cost_usd"] for job in billed.values()), 2)
    trial.over_cap_usd = round(max(0.0, trial.billed_usd - trial.cap_usd), 2)
    df = store.load() if store.exists() else None
    rows = [] if df is None or df.empty else df.to_dict("records")
    adopted = {r["request_id"] for r in rows if r.get("adopted") is True}
    with_video = {
        r["request_id"]
        for r in rows
        if r["status"] == "ok" and not r.get("cache_hit") and r.get("video_path") and Path(r["video_path"]).is_file()
    }
    trial.orphans_adopted = len(adopted & set(billed))
    per_fingerprint: dict[str, int] = {}
    for rid, job in billed.items():
        if rid not in adopted:
            per_fingerprint[job["fingerprint"]] = per_fingerprint.get(job["fingerprint"], 0) + 1
    trial.double_payments = sum(n - 1 for n in per_fingerprint.values() if n > 1)
    trial.paid_without_video = sum(1 for rid in billed if rid not in with_video)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=12, help="seeds the kill moments, caps and fault seeds")
    parser.add_argument("--requests", type=int, default=6, help="requests per sweep")
    parser.add_argument("--json", action="store_true", help="print the trials and totals as JSON")
    parser.add_argument("--only", type=int, action="append", help="run only these trial numbers")
    parser.add_argument("--keep", type=Path, help="keep stores and each step's log in this directory")
    parser.add_argument("--step-timeout", type=float, default=300.0, help="seconds per CLI step")
    args = parser.parse_args(argv)
    global LOGS, STEP_TIMEOUT_S
    STEP_TIMEOUT_S = args.step_timeout

    from kling_lab.backends.emulator import EmulatorConfig, ensure_emulator

    os.environ.pop("FAL_KEY", None)
    server = ensure_emulator(EmulatorConfig(**BASE))  # before anything imports fal_client; env for the CLI
    rng = random.Random(args.seed)
    profiles = list(PROFILES)
    trials = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kling-lab-fault-matrix-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        LOGS = work if args.keep else None
        for index in range(args.trials):
            kill = None if index % 6 == 5 else round(rng.uniform(0.3, 4.0), 2)  # every 6th runs to its end
            cap = round(PRICE * rng.randint(args.requests // 2, args.requests), 2)
            trial = Trial(index, profiles[index % len(profiles)], rng.randrange(10_000), kill, cap)
            if args.only and index not in args.only:
                continue
            trials.append(run_trial(server, trial, work, args.requests))
            if not args.json:
                print(trial.line(), flush=True)
    totals = {
        "trials": len(trials),
        "killed": sum(t.killed for t in trials),
        "jobs": sum(t.jobs for t in trials),
        "orphans_adopted": sum(t.orphans_adopted for t in trials),
        "double_payments": sum(t.double_payments for t in trials),
        "paid_without_video": sum(t.paid_without_video for t in trials),
        "trials_over_cap": sum(t.over_cap_usd > 1e-9 for t in trials),
        "billed_usd": round(sum(t.billed_usd for t in trials), 2),
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps({"trials": [asdict(t) for t in trials], "totals": totals}, indent=2))
    else:
        print(
            f"{totals['trials']} trials ({totals['killed']} killed), {totals['jobs']} jobs at fal, "
            f"{totals['orphans_adopted']} orphans adopted (by a run, resume or reconcile): "
            f"double payments {totals['double_payments']}, "
            f"paid clips without a video {totals['paid_without_video']}, trials over the cap {totals['trials_over_cap']} "
            f"({totals['seconds']} s)"
        )
    clean = all(t.clean for t in trials)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
