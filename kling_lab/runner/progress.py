"""The run's tqdm progress bar, as a run observer: one step per job's terminal event."""

from __future__ import annotations

from typing import Any

from kling_lab.runner.events import JobEvent


class ProgressBar:
    """``<sweep id>: n/total clip [$X at fal prices, k ok, m failed]`` ("spent" on real fal)."""

    def __init__(self, total: int, desc: str, *, emulated: bool) -> None:
        from tqdm.auto import tqdm

        self._bar: Any = tqdm(total=total, desc=desc, unit="clip", dynamic_ncols=True)
        self._label = "at fal prices" if emulated else "spent"
        self.ok = 0
        self.failed = 0
        self._show(0.0, refresh=True)

    def on_event(self, event: JobEvent) -> None:
        if not event.terminal:
            return
        status = event.row.get("status") if event.row is not None else None
        self.ok += status == "ok"  # cache hits too: their rows are ok
        self.failed += status == "failed"
        self._show(event.spent_usd, refresh=False)
        self._bar.update(1)

    def _show(self, spent_usd: float, *, refresh: bool) -> None:
        self._bar.set_postfix_str(
            f"${spent_usd:.2f} {self._label}, {self.ok} ok, {self.failed} failed", refresh=refresh
        )

    def close(self) -> None:
        self._bar.close()
