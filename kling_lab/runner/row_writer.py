"""The row writer: terminal rows reach the run log in batches, each followed by its journal ``done``.

Rows are queued by :meth:`RowWriter.add` and written as one part file every
:data:`ROW_FLUSH_INTERVAL_S` (and once more when the run ends). Right after a batch is in the
log, each of its requests is journaled ``done`` and its claim released (a waiting twin then
finds the row), with no await in between: an interrupt cannot split them. A write that fails
(a full disk) keeps the batch queued for the next try; the run's end reports what stayed
unwritten (those requests are still pending in the journal: a resume logs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kling_lab.runner.claims import Claims
from kling_lab.runner.journal import Journal, JournalWriteError
from kling_lab.store.run_store import RunStore

log = logging.getLogger("kling_lab.runner")

ROW_FLUSH_INTERVAL_S = 0.5  # terminal rows reach the run log within this, many per part file


@dataclass(frozen=True)
class _Queued:
    row: dict[str, Any]
    request_id: str | None  # journaled ``done`` once the row is in the log
    claim: str | None  # released once the row is in the log


class RowWriter:
    """Queues a run's terminal rows and writes them to the store in batches."""

    def __init__(
        self,
        store: RunStore,
        journal: Journal,
        claims: Claims,
        *,
        append: Callable[[Sequence[Mapping[str, Any]]], object] | None = None,
    ) -> None:
        self.store = store
        self._append = append or store.append  # where a batch goes: the run log (judgements for judges)
        self.journal = journal
        self.claims = claims
        self.rows: list[dict[str, Any]] = []  # every row of the run, written or not
        self.on_logged: Callable[[float], None] | None = None  # told the cost of each batch now in the log
        self._unwritten: list[_Queued] = []
        self._spent = 0.0
        self._task: asyncio.Future[None] | None = None

    @property
    def spent_usd(self) -> float:
        """The run's cost so far: the sum of its rows' ``cost_usd``."""
        return round(self._spent, 2)

    @property
    def unwritten_count(self) -> int:
        return len(self._unwritten)

    def add(self, row: dict[str, Any], *, request_id: str | None = None, claim: str | None = None) -> None:
        """Queue one terminal row (see :meth:`flush`)."""
        self._unwritten.append(_Queued(row, request_id, claim))
        self.rows.append(row)
        self._spent += row.get("cost_usd") or 0.0

    def flush(self) -> None:
        """Write the queued rows as one part file, then journal each request ``done``.

        A crash before the write loses no paid work: those requests are still pending in the
        journal (with their ``downloaded`` facts), so a resume writes their rows without
        submitting or downloading again. A ``done`` event that cannot be written is harmless:
        the next run sees the row in the log and marks the request done then."""
        if not self._unwritten:
            return
        batch, self._unwritten = self._unwritten, []
        try:
            self._append([q.row for q in batch])
        except BaseException:
            self._unwritten[:0] = batch
            raise
        for q in batch:
            if q.claim is not None:
                self.claims.release(q.claim)
        if self.on_logged is not None:
            self.on_logged(sum(q.row.get("cost_usd") or 0.0 for q in batch))
        try:
            for q in batch:
                if q.request_id is not None:
                    self.journal.done(request_id=q.request_id, run_id=q.row["run_id"], status=q.row["status"])
        except JournalWriteError as exc:
            log.warning("rows are in the run log, but their journal 'done' events could not be written: %s", exc)
            self.journal.unwritten = [ev for ev in self.journal.unwritten if ev.get("event") != "done"]

    def start(self) -> None:
        """Flush every :data:`ROW_FLUSH_INTERVAL_S` until :meth:`close`."""
        self._task = asyncio.ensure_future(self._flush_periodically())

    def close(self) -> None:
        """Stop the periodic flush and write what is still queued."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.flush()

    async def aclose(self) -> None:
        """:meth:`close`, waiting for the periodic task to end (no task is left pending)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.flush()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(ROW_FLUSH_INTERVAL_S)
            try:
                self.flush()
            except OSError as exc:  # kept queued: the next flush (or the final one) retries
                log.warning("could not write %d rows to the run log yet: %s", len(self._unwritten), exc)
