"""What a run's budget starts from: the sweep's earlier spend, its open ambiguous submits, the store's budget."""

from __future__ import annotations

from decimal import Decimal

from kling_lab.runner.budget import Budget
from kling_lab.runner.journal import AmbiguousSubmit
from kling_lab.store.budget import StoreBudget
from kling_lab.store.run_store import RunStore


def budget_for_run(
    store: RunStore,
    backend_name: str,
    cap_usd: float | None,
    sweep_id: str | None,
    open_ambiguous: list[AmbiguousSubmit],
    user: str,
) -> Budget:
    """The run's :class:`Budget`: earlier spend of the sweep (its rows on this backend) and the prices of
    its ambiguous submits count against ``cap_usd``; the store's budget, if set, holds every open
    ambiguous price too."""
    already = Decimal(0)
    if sweep_id is not None:
        rows = store.rows_where("sweep_id", [sweep_id])
        already += sum(
            (Decimal(str(r.get("cost_usd") or 0)) for r in rows if r.get("backend") == backend_name), Decimal(0)
        )
        already += sum(
            (Decimal(str(a.price_usd)) for a in open_ambiguous if a.sweep.get("sweep_id") == sweep_id), Decimal(0)
        )
    store_budget = StoreBudget.for_runner(store, backend_name, user)
    budget = Budget(cap_usd, already_usd=float(already), store_budget=store_budget)
    if store_budget is not None and open_ambiguous:
        store_budget.force_reserve(float(sum(Decimal(str(a.price_usd)) for a in open_ambiguous)))
    return budget


__all__ = ["budget_for_run"]
