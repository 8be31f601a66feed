"""Helpers the templates in ``notebooks/`` call, so that they hold no logic of their own."""

from __future__ import annotations

from typing import Any

import pandas as pd

from kling_lab.store.selection import pick_sweep, sweeps


def backend_options(
    backend: str,
    *,
    emulator_render_scale: float | None = None,
    emulator_queue_delay_s: float | None = None,
    emulator_service_time_s: float | None = None,
) -> dict[str, Any]:
    """``backend_options`` for :func:`kling_lab.run` from a template's emulator parameters.

    The settings configure the emulator this kernel starts; they are ignored for ``fal`` and when an
    external emulator (``$KLING_LAB_EMULATOR``, e.g. ``kling-lab emulator``) is in use.
    """
    if backend != "emulator":
        return {}
    from kling_lab.backends.emulator import EmulatorConfig
    from kling_lab.backends.emulator.service import external_emulator

    if external_emulator() is not None:
        return {}
    settings = {
        "render_scale": emulator_render_scale,
        "queue_delay_s": emulator_queue_delay_s,
        "service_time_s": emulator_service_time_s,
    }
    return {"config": EmulatorConfig(**{k: v for k, v in settings.items() if v is not None})}


def simulate_votes(
    runs: pd.DataFrame,
    by: str = "negative_prompt",
    n: int = 20,
    *,
    seed: int = 0,
    favourite: Any = None,
    preference: float = 0.7,
) -> pd.DataFrame:
    """SIMULATED blind A/B votes for demos and tests: never real judgements.

    Casts up to ``n`` votes (at most one per pair of :func:`kling_lab.views.ab`) as voter
    ``"simulated"`` through the real widget, into a throwaway store: the user's store never sees
    them. A pair showing the arm ``favourite`` votes for it with probability ``preference``; every
    other vote is random (left, right or tie). Returns the votes as :func:`kling_lab.views.load_votes` does.
    """
    import random
    import tempfile

    from kling_lab.views import ab, load_votes

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="kling-lab-simulated-votes-") as scratch:
        widget = ab(runs, by=by, voter="simulated", store=scratch, seed=seed, resume=False)
        for _ in range(n):
            pair = widget.current
            if pair is None:
                break
            sides = {"left": pair.left.get(by), "right": pair.right.get(by)}
            liked = [side for side, value in sides.items() if favourite is not None and value == favourite]
            if liked and rng.random() < preference:
                widget.vote(liked[0])
            else:
                widget.vote(rng.choice(["left", "right", "tie"]))
        return load_votes(scratch)


__all__ = ["backend_options", "pick_sweep", "simulate_votes", "sweeps"]
