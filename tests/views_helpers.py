"""Helpers for the view tests: emulator sweeps into a store, and the system Chromium.

Module-scoped fixtures use the session's emulator (reset to the fast test config) so one real
sweep serves every test of a module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from conftest import FAST

from kling_lab.backends.emulator import EmulatorConfig, EmulatorServer
from kling_lab.runner.api import run
from kling_lab.store.run_store import load_runs
from kling_lab.sweep import Sweep

PROMPT = "a red fox trotting through fresh snow"
NEG = "blur, distort, and low quality"
BLOCKED = "a [blocked] red fox"  # the emulator refuses it: a failed run with an error message
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sweep_into(
    emulator: EmulatorServer, store: Path, name: str = "views", *, repeats: int = 1, **inputs: Any
) -> pd.DataFrame:
    """Run ``Sweep.grid(name, **inputs)`` on the (reset, fast) emulator into ``store``; return its rows."""
    emulator.reset(EmulatorConfig(**FAST))
    inputs.setdefault("prompt", PROMPT)
    sweep = Sweep.grid(name, repeats=repeats, **inputs)
    run(sweep, store=store, progress=False, concurrency=8)
    return load_runs(store, sweep_id=sweep.sweep_id)


def standard_store(emulator: EmulatorServer, store: Path) -> pd.DataFrame:
    """8 ok runs (cfg 0.25/0.75 × 16:9/9:16 × two negative prompts) and 2 failed ones, all in one store."""
    sweep_into(
        emulator,
        store,
        cfg_scale=[0.25, 0.75],
        aspect_ratio=["16:9", "9:16"],
        negative_prompt=["blur, distort, and low quality", ""],
    )
    sweep_into(emulator, store, "blocked", prompt=BLOCKED, cfg_scale=0.25, aspect_ratio=["16:9", "9:16"])
    return load_runs(store)


def launch_chromium(playwright: Any) -> Any:
    """Headless system Chromium (never a downloaded browser)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


HARNESS = Path(__file__).with_name("widget_harness.js")


def mount_widget(page: Any, widget: Any) -> None:
    """Render an anywidget's ESM with its current state in a blank page (``tests/widget_harness.js``)."""
    page.add_script_tag(path=str(HARNESS))
    page.evaluate("state => window.mountWidget(state)", widget.get_state())
