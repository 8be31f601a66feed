"""Views of the run log: compare grid, blind A/B votes and their win rates, static HTML report.

=================  =========================================================================
``compare``        side-by-side video grid faceted by two columns, synced playback (widget)
``ab``             blind pairwise votes between arms of one parameter (widget)
``load_votes``     the votes in a store as a DataFrame
``win_rates``      per-arm win rates and Bradley–Terry strengths with bootstrap intervals
``plot_win_rates`` a matplotlib Figure of that table
``report``         a static HTML gallery of a sweep that opens from disk
``watch``          a compare grid of a sweep running elsewhere, filled in as its clips arrive
``run``            ``kling_lab.run``: with ``show=True``, a live grid while the sweep runs in the background
=================  =========================================================================

Module map: ``grid`` (the faceted grid spec shared by compare and report), ``live`` (live grids),
``labels`` (cell text),
``promptdiff``, ``values``, ``sources`` / ``server`` / ``preview`` (how the browser gets the
videos), ``pairing`` + ``votes`` + ``winrates`` (A/B), ``htmltables`` (report tables), ``assets``
(the ``.js`` / ``.css`` / ``.html`` files beside this module).
"""

from kling_lab.plots.winrates import plot_win_rates
from kling_lab.stats.winrates import win_rates
from kling_lab.store.votes import load_votes
from kling_lab.views.ab import ABWidget, ab
from kling_lab.views.compare import CompareWidget, compare
from kling_lab.views.live import LiveRun, run, watch
from kling_lab.views.report import report

__all__ = [
    "ABWidget",
    "CompareWidget",
    "LiveRun",
    "ab",
    "compare",
    "load_votes",
    "plot_win_rates",
    "report",
    "run",
    "watch",
    "win_rates",
]
