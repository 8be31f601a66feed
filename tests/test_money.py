"""One wording for money everywhere (issue 15 item 6): emulator rows were never paid for."""

from __future__ import annotations

import pandas as pd
import pytest

from kling_lab.util.money import money_text, spent_text


def test_emulator_money_is_never_called_spent():
    assert money_text(16.8, "emulator") == "$16.80 at fal prices (emulator: nothing was spent)"
    assert money_text(16.8, "fal") == "spent $16.80"
    assert money_text(0, "fal") == "spent $0.00"


def test_a_frame_of_mixed_backends_says_what_was_paid():
    df = pd.DataFrame({"backend": ["emulator", "emulator", "fal"], "cost_usd": [1.4, 1.4, 2.8]})
    assert spent_text(df) == "spent $2.80 (+ $2.80 at fal prices on the emulator: not spent)"
    assert spent_text(df[df["backend"] == "emulator"]) == "$2.80 at fal prices (emulator: nothing was spent)"
    assert spent_text(df[df["backend"] == "fal"]) == "spent $2.80"
    assert spent_text(df.iloc[:0]) == "spent $0.00"


@pytest.mark.parametrize("cost", [None, float("nan")])
def test_missing_costs_count_as_zero(cost):
    df = pd.DataFrame({"backend": ["fal", "fal"], "cost_usd": [1.4, cost]})
    assert spent_text(df) == "spent $1.40"


def test_a_missing_backend_is_not_the_emulator():
    df = pd.DataFrame({"backend": pd.array(["emulator", None], dtype="string"), "cost_usd": [1.4, 2.8]})
    assert spent_text(df) == "spent $2.80 (+ $1.40 at fal prices on the emulator: not spent)"
