"""Run and resume sweeps: the runner (one job's life, the row writer, progress), budget, claims,
journal and retries. ``api`` holds the functions a notebook calls."""

from kling_lab.runner.api import resume, resume_async, run, run_async
from kling_lab.runner.orchestrator import Runner, RunOptions, RunResult

__all__ = ["RunOptions", "RunResult", "Runner", "resume", "resume_async", "run", "run_async"]
