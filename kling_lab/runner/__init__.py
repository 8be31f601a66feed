"""Run and resume sweeps: the runner (one job's life, the row writer, progress, run events),
budget, claims, journal and the retry policy. ``api`` holds the functions a notebook calls."""

from kling_lab.runner.api import resume, resume_async, run, run_async
from kling_lab.runner.events import JobEvent, JobState, RunObserver
from kling_lab.runner.options import RunOptions, RunResult
from kling_lab.runner.orchestrator import Runner

__all__ = [
    "JobEvent",
    "JobState",
    "RunObserver",
    "RunOptions",
    "RunResult",
    "Runner",
    "resume",
    "resume_async",
    "run",
    "run_async",
]
