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
