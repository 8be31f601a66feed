"""Budget reservation: never spend + reserve beyond the cap, even with many waiters."""

import asyncio

import pytest

from kling_lab.runner.budget import Budget


def test_reserve_until_cap_then_refuse():
    async def main():
        b = Budget(5.0)
        got = [await b.reserve(1.40) for _ in range(3)]
        assert got == [True, True, True]
        assert b.reserved_usd == pytest.approx(4.20)
        # A 4th does not fit while 3 are in flight: it waits; all three succeed → refused.
        waiter = asyncio.ensure_future(b.reserve(1.40))
        await asyncio.sleep(0)
        assert not waiter.done()
        for _ in range(3):
            await b.settle(1.40, 1.40)
        assert await waiter is False
        assert b.spent_usd == pytest.approx(4.20)

    asyncio.run(main())


def test_failed_request_frees_its_reservation():
    async def main():
        b = Budget(3.0)
        assert await b.reserve(1.40) and await b.reserve(1.40)
        waiter = asyncio.ensure_future(b.reserve(1.40))
        await asyncio.sleep(0)
        await b.settle(1.40, 0.0)  # failed: not billed
        assert await waiter is True
        assert b.spent_usd == 0 and b.reserved_usd == pytest.approx(2.80)

    asyncio.run(main())


def test_no_cap_always_fits_and_decimal_exact():
    async def main():
        b = Budget(None)
        for _ in range(12):
            assert await b.reserve(1.40)
            await b.settle(1.40, 1.40)
        assert b.spent_usd == 16.80

    asyncio.run(main())


def test_cap_smaller_than_one_request():
    async def main():
        assert await Budget(1.0).reserve(1.40) is False

    asyncio.run(main())


def test_a_cap_equal_to_the_total_admits_the_last_request():
    async def main():
        b = Budget(4.20)
        # 1.40 · 3 == 4.20 exactly (a reserve that does not fit waits: the bound turns that hang into a failure)
        assert [await asyncio.wait_for(b.reserve(1.40), timeout=30) for _ in range(3)] == [True, True, True]
        assert b.reserved_usd == 4.20
        for _ in range(3):
            await b.settle(1.40, 1.40)
        assert b.spent_usd == 4.20 and await b.reserve(0.01) is False  # nothing more fits

    asyncio.run(main())


def test_a_sweep_whose_total_equals_the_cap_runs_every_request(emulator, tmp_path):
    from kling_lab.runner.api import run
    from kling_lab.store.run_store import load_runs
    from kling_lab.sweep import Sweep

    sweep = Sweep.grid("exact", prompt="a kite", cfg_scale=[0.2, 0.5, 0.8])
    assert sweep.total_usd() == 4.20
    result = run(sweep, store=tmp_path, progress=False, max_cost_usd=4.20, concurrency=3)
    df = load_runs(tmp_path)
    assert (df["status"] == "ok").sum() == 3 and result.count("skipped_budget") == 0
    assert df["cost_usd"].sum() == pytest.approx(4.20) and emulator.stats()["submissions"] == 3


def test_a_zero_cap_refuses_everything_and_a_negative_cap_is_refused():
    async def main():
        assert await Budget(0.0).reserve(1.40) is False
        assert await Budget(0.5).reserve(0.5) is True

    asyncio.run(main())
    for bad in (-0.01, -0.5):
        with pytest.raises(ValueError, match=">= 0"):
            Budget(bad)


def test_a_zero_cap_skips_every_request_and_says_so(emulator, tmp_path):
    from kling_lab.runner.api import run
    from kling_lab.store.run_store import load_runs
    from kling_lab.sweep import Sweep

    result = run(
        Sweep.grid("free", prompt="a kite", cfg_scale=[0.2, 0.8]), store=tmp_path, progress=False, max_cost_usd=0
    )
    df = load_runs(tmp_path)
    assert result.count("skipped_budget") == 2 and emulator.stats()["submissions"] == 0
    assert set(df["error"]) == {"max cost $0.00 for this sweep would be exceeded"} and df["cost_usd"].sum() == 0


def test_a_held_price_counts_against_the_cap_until_it_is_reconciled():
    """An unanswered submit (or a request left for a resume) holds its price: fal may bill it."""

    async def main():
        b = Budget(2.80)
        for _ in range(2):
            assert await b.reserve(1.40)
            await b.hold(1.40)  # the POST went unanswered: its price is held, no longer in flight
        assert b.held_usd == 2.80 and b.reserved_usd == 0
        assert await asyncio.wait_for(b.reserve(1.40), timeout=30) is False, "two held prices fill a $2.80 cap"
        b.unhold(1.40)  # one orphan was found: it is collected as a reservation again
        assert b.held_usd == 1.40 and b.reserved_usd == 1.40
        await b.settle(1.40, 1.40)
        assert b.spent_usd == 1.40 and await asyncio.wait_for(b.reserve(0.01), timeout=30) is False

    asyncio.run(main())


def test_a_held_price_wakes_the_waiters_which_then_give_up():
    """A waiter waits for in-flight reservations to be freed; once the last one is held instead, it is
    told at once (nothing will be freed in this run) and gives up."""

    async def main():
        b = Budget(1.40)
        assert await b.reserve(1.40)
        waiter = asyncio.ensure_future(b.reserve(1.40))
        await asyncio.sleep(0)
        assert not waiter.done()
        await b.hold(1.40)  # left for a resume: paid, or maybe
        assert await asyncio.wait_for(waiter, timeout=30) is False

    asyncio.run(main())


def test_the_refusal_says_which_limit_refused(tmp_path):
    from kling_lab.store.budget import BudgetRule, StoreBudget, write_rule
    from kling_lab.store.run_store import RunStore

    store = RunStore(tmp_path)
    write_rule(store, BudgetRule(100.0))
    generous = StoreBudget(store, BudgetRule(100.0), "emulator", "ana")
    tight = StoreBudget(store, BudgetRule(2.0, per_user=True), "emulator", "ana")

    async def main():
        by_cap = Budget(1.0, store_budget=generous)
        assert await by_cap.reserve(1.40) is False
        assert by_cap.describe_refusal() == "max cost $1.00 for this sweep would be exceeded"
        earlier = Budget(3.0, already_usd=2.80, store_budget=generous)
        assert await earlier.reserve(1.40) is False
        assert earlier.describe_refusal() == (
            "max cost $3.00 for this sweep would be exceeded; $2.80 of it spent or reserved by earlier runs"
        )
        by_store = Budget(10.0, store_budget=tight)
        assert await by_store.reserve(1.40) is True
        await by_store.settle(1.40, 1.40)  # charged, its row not logged yet: still counted by the store
        assert await asyncio.wait_for(by_store.reserve(1.40), timeout=30) is False
        assert by_store.describe_refusal() == "the store's budget ($2.00 per user) would be exceeded"
        assert await by_cap.reserve(0.5) is True and by_cap.describe_refusal().startswith("max cost $1.00")

    asyncio.run(main())


def test_a_re_attached_request_is_booked_in_the_stores_ledger(tmp_path):
    """A journaled request collected by a resume was paid before: the run books its price in the store's
    budget too, so another runner cannot spend it meanwhile."""
    from kling_lab.store.budget import BudgetRule, StoreBudget, write_rule
    from kling_lab.store.run_store import RunStore

    store = RunStore(tmp_path)
    write_rule(store, BudgetRule(2.0))
    resuming = StoreBudget(store, BudgetRule(2.0), "emulator", "ana")
    other = StoreBudget(store, BudgetRule(2.0), "emulator", "bo")
    Budget(None, store_budget=resuming).force_reserve(1.40)
    assert resuming.ledger.reserved_usd == 1.40
    assert other.try_reserve(1.40) is False and other.try_reserve(0.60) is True
    resuming.close()
    other.close()
