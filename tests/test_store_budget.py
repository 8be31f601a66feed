"""The store-wide budget (``kling-lab budget set``): what counts against it, and who may spend it.

Real stores throughout: a local directory with real ``flock`` locks (a runner killed with SIGKILL is
a real process), ``memory://`` for an object store without conditional writes, real runs over the
emulator. The S3 lock (conditional writes) is tested against moto in ``test_shared_store.py``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from kling_lab.errors import InvalidInput
from kling_lab.runner.api import run
from kling_lab.runner.retry import Backoff
from kling_lab.store import budget as store_budget
from kling_lab.store.budget import (
    LEDGER_DIR,
    BudgetRule,
    StoreBudget,
    budget_report,
    logged_spend,
    read_rule,
    this_month,
    write_rule,
)
from kling_lab.store.run_store import RunStore
from kling_lab.sweep import Sweep
from kling_lab.util.locks import FileLock

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(progress=False, backoff=Backoff(0.01, 0.05))


def row(cost: float, user: str = "ana", backend: str = "emulator", logged_at: datetime | None = None, **extra):
    return {
        "run_id": uuid.uuid4().hex,
        "sweep_id": "s",
        "experiment": "e",
        "fingerprint": uuid.uuid4().hex,
        "endpoint": "x",
        "backend": backend,
        "status": "ok",
        "prompt": "p",
        "cost_usd": cost,
        "user": user,
        "logged_at": logged_at if logged_at is not None else datetime.now(UTC),
        **extra,
    }


def last_month() -> datetime:
    return datetime.now(UTC).replace(day=1) - timedelta(days=1)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kling_lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def ledgers(store: RunStore) -> list[Path]:
    return sorted((store.root / LEDGER_DIR).glob("*.json"))


# -- the rule ----------------------------------------------------------------------------------------
def test_a_rule_is_a_finite_amount_of_zero_or_more(tmp_path):
    store = RunStore(tmp_path)
    assert read_rule(store) is None
    for bad in (-0.01, float("inf"), float("nan")):
        with pytest.raises(InvalidInput, match="finite amount >= 0"):
            write_rule(store, BudgetRule(bad))
    assert read_rule(store) is None, "nothing written"
    write_rule(store, BudgetRule(0.0))
    assert read_rule(store) == BudgetRule(0.0)
    write_rule(store, BudgetRule(12.5, per_user=True, per_month=True))
    assert read_rule(store) == BudgetRule(12.5, per_user=True, per_month=True)
    assert BudgetRule(12.5, per_user=True, per_month=True).describe() == "$12.50 per user per month"
    write_rule(store, None)
    assert read_rule(store) is None and not list(tmp_path.glob("tmp/*.json")), "no temporary file left"


def test_a_zero_budget_refuses_every_request_and_clear_lifts_it(emulator, tmp_path):
    assert cli("budget", "set", "0", "--store", str(tmp_path)).returncode == 0
    sweep = Sweep.grid("zero", prompt="a paper lantern", cfg_scale=[0.2, 0.8])
    result = run(sweep, store=tmp_path, **FAST)
    assert result.count("skipped_budget") == 2 and emulator.stats()["submissions"] == 0
    cleared = cli("budget", "clear", "--store", str(tmp_path))
    assert cleared.returncode == 0 and "none" in cleared.stdout and read_rule(RunStore(tmp_path)) is None
    assert run(sweep, store=tmp_path, **FAST).count("ok") == 2


@pytest.mark.parametrize("where", ["before", "after"])
def test_budget_set_and_clear_act_on_the_store_named_before_or_after_the_action(tmp_path, where):
    """``kling-lab budget --store X set 5`` once wrote the budget into ./kling_runs (the action's own
    --store default replaced X): X stayed without a limit."""
    store, elsewhere = tmp_path / "team", tmp_path / "cwd"
    elsewhere.mkdir()

    def budget(*action: str) -> subprocess.CompletedProcess:
        args = ("--store", str(store))
        line = ("budget", *args, *action) if where == "before" else ("budget", *action, *args)
        done = subprocess.run(
            [sys.executable, "-m", "kling_lab.cli", *line], capture_output=True, text=True, timeout=120, cwd=elsewhere
        )
        assert done.returncode == 0, done.stderr
        return done

    assert str(store) in budget("set", "5").stdout
    assert read_rule(RunStore(store)) == BudgetRule(5.0) and not (elsewhere / "kling_runs").exists()
    assert str(store) in budget("clear").stdout
    assert read_rule(RunStore(store)) is None and not (elsewhere / "kling_runs").exists()


def test_an_unreadable_budget_file_is_one_line_and_nothing_is_submitted(emulator, tmp_path):
    (tmp_path / "budget.json").write_text("{not json")
    shown = cli("budget", "--store", str(tmp_path))
    assert shown.returncode == 2 and "budget file budget.json is unreadable" in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1, shown.stderr
    (tmp_path / "budget.json").write_text('{"per_user": true}')  # no limit
    with pytest.raises(InvalidInput, match="unreadable"):
        run(Sweep.grid("bad", prompt="a kite", cfg_scale=[0.5]), store=tmp_path, **FAST)
    assert emulator.stats()["submissions"] == 0


# -- what counts -------------------------------------------------------------------------------------
def test_logged_spend_is_this_backends_within_the_rules_scope(tmp_path):
    store = RunStore(tmp_path)
    month = this_month()
    store.append(
        [
            row(1.40),
            row(2.80, user="bo"),
            row(0.70, logged_at=last_month()),
            row(5.60, backend="fal"),
        ]
    )
    assert logged_spend(store, BudgetRule(10), "emulator", "ana", month) == Decimal("4.90")
    assert logged_spend(store, BudgetRule(10, per_user=True), "emulator", "ana", month) == Decimal("2.10")
    assert logged_spend(store, BudgetRule(10, per_month=True), "emulator", "ana", month) == Decimal("4.20")
    assert logged_spend(store, BudgetRule(10, per_user=True, per_month=True), "emulator", "ana", month) == Decimal(
        "1.40"
    )
    assert logged_spend(store, BudgetRule(10), "fal", "ana", month) == Decimal("5.60")
    assert logged_spend(RunStore(tmp_path / "empty"), BudgetRule(10), "emulator", "ana", month) == 0


def test_a_per_month_budget_starts_afresh_each_month(emulator, tmp_path):
    store = RunStore(tmp_path)
    store.append([row(2.80, logged_at=last_month())])
    write_rule(store, BudgetRule(2.80, per_month=True))
    result = run(Sweep.grid("monthly", prompt="a tin robot", cfg_scale=[0.2, 0.5, 0.8]), store=tmp_path, **FAST)
    assert result.count("ok") == 2 and result.count("skipped_budget") == 1
    shown = cli("budget", "--store", str(tmp_path), "--backend", "emulator")
    assert f"(month {this_month()})" in shown.stdout and "$2.80 logged" in shown.stdout, shown.stdout
    assert "$0.00 left" in shown.stdout


def test_live_runners_open_money_counts_within_the_scope_and_a_finished_one_leaves_no_ledger(tmp_path):
    store = RunStore(tmp_path)
    scoped = BudgetRule(5.0, per_user=True, per_month=True)
    me = StoreBudget(store, scoped, "emulator", "ana")
    same = StoreBudget(store, scoped, "emulator", "ana")
    other_user = StoreBudget(store, scoped, "emulator", "bo")
    other_backend = StoreBudget(store, scoped, "fal", "ana")
    other_month = StoreBudget(store, scoped, "emulator", "ana")
    other_month.ledger.month = "2000-01"
    for runner in (same, other_user, other_backend, other_month):
        assert runner.try_reserve(1.40)
    assert me.spent_and_open() == (Decimal(0), Decimal("1.40"))
    everyone = StoreBudget(store, BudgetRule(5.0), "emulator", "ana")
    assert everyone.spent_and_open() == (Decimal(0), Decimal("4.20")), "all users and months, this backend"

    same.settle(1.40, 1.40)  # charged, its row not in the log yet: still open
    assert me.spent_and_open() == (Decimal(0), Decimal("1.40"))
    store.append([row(1.40)])
    same.logged(1.40)  # the row writer flushed it
    assert me.spent_and_open() == (Decimal("1.40"), Decimal(0))
    assert same.ledger.reserved_usd == 0 and same.ledger.charged_usd == 0

    for runner in (same, other_user, other_backend, other_month, everyone):
        runner.close()
    assert ledgers(store) == [], "a finished runner removes its ledger"


def test_a_settle_or_log_never_leaves_negative_money_in_a_ledger(tmp_path):
    store = RunStore(tmp_path)
    runner = StoreBudget(store, BudgetRule(2.80), "emulator", "ana")
    assert runner.try_reserve(1.40)
    runner.settle(2.80, 0.0)  # more than it reserved
    runner.logged(1.40)  # more than it charged
    assert runner.ledger.reserved_usd == 0 and runner.ledger.charged_usd == 0
    other = StoreBudget(store, BudgetRule(2.80), "emulator", "bo")
    assert other.try_reserve(2.80) and not other.try_reserve(0.01), "a negative ledger would make room"
    runner.logged(0.0)
    runner.close()
    other.close()


def test_the_last_request_fits_a_budget_equal_to_the_total(tmp_path):
    store = RunStore(tmp_path)
    one, two = (StoreBudget(store, BudgetRule(4.20), "emulator", u) for u in ("ana", "bo"))
    assert one.try_reserve(1.40) and two.try_reserve(1.40) and one.try_reserve(1.40)
    assert not two.try_reserve(0.01)
    assert budget_report(store, "emulator", "ana") is None, "no rule written: nothing to report"
    one.close()
    two.close()


def test_a_request_paid_before_the_check_is_booked_over_the_limit_and_counts_for_others(tmp_path):
    """A re-attached request or an ambiguous submit was sent already: its price is booked without a check."""
    store = RunStore(tmp_path)
    runner = StoreBudget(store, BudgetRule(2.80), "emulator", "ana")
    runner.force_reserve(1.40)
    runner.force_reserve(2.80)  # past the limit: the money is spent whatever the check would say
    assert runner.ledger.reserved_usd == pytest.approx(4.20)
    other = StoreBudget(store, BudgetRule(2.80), "emulator", "bo")
    assert other.spent_and_open() == (Decimal(0), Decimal("4.2"))
    assert not other.try_reserve(0.01)
    runner.close()
    other.close()


def test_a_row_without_a_user_counts_for_no_user_under_a_per_user_rule(tmp_path):
    store = RunStore(tmp_path)
    store.append([row(1.40), row(2.80, user=None)])
    assert logged_spend(store, BudgetRule(10, per_user=True), "emulator", "ana", this_month()) == Decimal("1.40")
    assert logged_spend(store, BudgetRule(10), "emulator", "ana", this_month()) == Decimal("4.20")


def test_logged_spend_keeps_fractions_of_a_cent_and_drops_float_noise(tmp_path):
    store = RunStore(tmp_path)
    store.append([row(0.000003), row(0.000004), row(0.1), row(0.2)])  # judge calls cost fractions of a cent
    assert logged_spend(store, BudgetRule(10), "emulator", "ana", this_month()) == Decimal("0.300007")


def test_a_dead_runners_ledger_listed_first_hides_no_live_one(tmp_path):
    store = RunStore(tmp_path)
    live = StoreBudget(store, BudgetRule(10), "emulator", "bo")
    assert live.try_reserve(1.40)
    dead = {"backend": "emulator", "user": "cy", "month": this_month(), "reserved_usd": 5.0}
    (store.root / LEDGER_DIR / "0-dead.json").write_text(json.dumps(dead))  # sorts first; nobody holds its lock
    me = StoreBudget(store, BudgetRule(10), "emulator", "ana")
    assert me.try_reserve(1.40)
    assert me.spent_and_open() == (Decimal(0), Decimal("1.40")), "the dead one skipped, the live one counted"
    live.close()
    me.close()


@pytest.mark.parametrize(
    "data",
    [b"not json", b"{}", b'{"expires_at": 5}', b'{"expires_at": "soon"}', b'{"expires_at": "2999-01-01T00:00:00"}'],
    ids=["not-json", "no-expiry", "a-number", "not-a-time", "no-time-zone"],
)
def test_a_lease_whose_expiry_cannot_be_read_counts_as_expired(data):
    assert store_budget._expired(data)


def test_a_lease_expiring_later_is_live():
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert not store_budget._expired(json.dumps({"expires_at": later.isoformat()}).encode())


def test_on_object_storage_a_ledger_that_vanished_or_has_no_readable_expiry_is_passed_over(tmp_path, monkeypatch):
    monkeypatch.setenv("KLING_LAB_CACHE", str(tmp_path / "cache"))
    store = RunStore(f"memory://kling-lab-budget-{uuid.uuid4().hex}/store")
    live = StoreBudget(store, BudgetRule(10), "emulator", "bo")
    assert live.try_reserve(1.40)
    files = store.files
    broken = {"backend": "emulator", "user": "cy", "month": this_month(), "reserved_usd": 5.0, "expires_at": "soon"}
    with files.fs.open(f"{files.base}/{LEDGER_DIR}/0-broken.json", "w") as fh:
        fh.write(json.dumps(broken))
    listed = files.find
    monkeypatch.setattr(files, "find", lambda prefix: {f"{LEDGER_DIR}/0-gone.json", *listed(prefix)})  # deleted since
    me = StoreBudget(store, BudgetRule(10), "emulator", "ana")
    assert me.spent_and_open() == (Decimal(0), Decimal("1.40"))
    live.close()


def test_a_killed_runners_ledger_no_longer_counts(tmp_path):
    """Its flock died with it: the ledger file is left, and ignored."""
    store = RunStore(tmp_path)
    write_rule(store, BudgetRule(2.80))
    code = (
        "import os, signal\n"
        "from kling_lab.store.budget import BudgetRule, StoreBudget\n"
        "from kling_lab.store.run_store import RunStore\n"
        f"b = StoreBudget(RunStore({str(tmp_path)!r}), BudgetRule(2.80), 'emulator', 'ana')\n"
        "assert b.try_reserve(2.80)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == -9
    assert len(ledgers(store)) == 1
    alive = StoreBudget(store, BudgetRule(2.80), "emulator", "bo")
    assert alive.spent_and_open() == (Decimal(0), Decimal(0))
    assert alive.try_reserve(2.80)
    alive.close()


def test_a_damaged_ledger_of_a_live_runner_is_skipped(tmp_path):
    store = RunStore(tmp_path)
    holder = FileLock(store.root / LEDGER_DIR / "elsewhere-1-damaged.json")
    assert holder.try_acquire()
    holder.write_info({"reserved_usd": 1.40})  # no backend, user, month: not a ledger
    runner = StoreBudget(store, BudgetRule(2.80), "emulator", "ana")
    assert runner.others() == []
    os.pwrite(holder.fd, b"{torn", 0)
    assert runner.others() == []
    holder.release(unlink=True)


def test_the_report_shows_logged_open_and_never_a_negative_amount_left(tmp_path):
    store = RunStore(tmp_path)
    write_rule(store, BudgetRule(5.0))
    store.append([row(1.40)])
    running = StoreBudget(store, BudgetRule(5.0), "emulator", "bo")
    assert running.try_reserve(1.40)
    report = budget_report(store, "emulator", "ana")
    assert report is not None
    assert (report["spent_usd"], report["open_usd"], report["left_usd"]) == (1.40, 1.40, 2.20)
    shown = cli("budget", "--store", str(tmp_path), "--backend", "emulator")
    assert "$1.40 logged + $1.40 reserved by running runs; $2.20 left" in shown.stdout, shown.stdout
    write_rule(store, BudgetRule(1.0))  # lowered below what was spent
    report = budget_report(store, "emulator", "ana")
    assert report is not None and report["left_usd"] == 0
    running.close()


def test_two_runners_checking_at_once_take_turns(tmp_path):
    """Check-and-book happens under the store's lock: while another holds it, a runner waits."""
    store = RunStore(tmp_path)
    runner = StoreBudget(store, BudgetRule(1.40), "emulator", "ana")
    lock = FileLock(store.root / "budget" / ".lock")
    assert lock.try_acquire()
    done = threading.Event()
    got: list[bool] = []
    thread = threading.Thread(target=lambda: (got.append(runner.try_reserve(1.40)), done.set()))
    thread.start()
    assert not done.wait(0.3), "it booked while another runner held the lock"
    lock.release()
    thread.join(60)
    assert got == [True]
    runner.close()


# -- object storage without conditional writes --------------------------------------------------------
def test_ledgers_on_object_storage_expire_unless_renewed(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("KLING_LAB_CACHE", str(tmp_path / "cache"))
    location = f"memory://kling-lab-budget-{uuid.uuid4().hex}/store"
    store = RunStore(location)
    write_rule(store, BudgetRule(4.20, per_month=True))
    assert read_rule(store) == BudgetRule(4.20, per_month=True)
    with caplog.at_level(logging.WARNING, logger="kling_lab.store"):
        me = StoreBudget(store, BudgetRule(4.20), "emulator", "ana")
    assert "cannot lock (no conditional writes)" in caplog.text
    other = StoreBudget(store, BudgetRule(4.20), "emulator", "bo")
    assert other.try_reserve(1.40)
    assert me.spent_and_open() == (Decimal(0), Decimal("1.40"))
    assert me.try_reserve(1.40) and me.spent_and_open()[1] == Decimal("1.40"), "its own ledger is not counted twice"

    monkeypatch.setattr(store_budget, "LEDGER_LEASE_S", -1.0)  # its next write is already expired: a dead runner
    other.settle(1.40, 1.40)
    assert me.spent_and_open()[1] == 0
    monkeypatch.setattr(store_budget, "LEDGER_LEASE_S", 300.0)
    other.heartbeat()  # alive after all: it renews its lease
    assert me.spent_and_open()[1] == Decimal("1.40")
    assert not me.try_reserve(1.41) and me.try_reserve(1.40)

    other.close()
    assert me.spent_and_open()[1] == 0 and len(store.files.find(LEDGER_DIR)) == 1
    me.close()
    assert not store.files.find(LEDGER_DIR)


def test_a_local_store_locks_without_warning_and_its_ledger_needs_no_renewal(tmp_path, caplog):
    store = RunStore(tmp_path)
    with caplog.at_level(logging.WARNING, logger="kling_lab.store"):
        runner = StoreBudget(store, BudgetRule(2.80), "emulator", "ana")
        assert runner.try_reserve(1.40)
    assert caplog.text == ""
    [path] = ledgers(store)
    written = path.read_text()
    runner.heartbeat()  # a local ledger lives as long as its flock: nothing to renew
    assert path.read_text() == written
    runner.close()


# -- readers beside writers (CI repro: a runner died mid-sweep, one row missing) --------------------------
def _beside(work, check, rounds: int = 400) -> list[BaseException]:
    """Run ``work`` in a loop on a thread while ``check`` runs ``rounds`` times here; what ``check`` raised."""
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [work() for _ in iter(stop.is_set, True)], daemon=True)
    thread.start()
    errors: list[BaseException] = []
    try:
        for _ in range(rounds):
            try:
                check()
            except BaseException as exc:  # collected for the assertion
                errors.append(exc)
    finally:
        stop.set()
        thread.join(60)
    return errors


def test_a_ledger_removed_while_another_runner_reads_it_is_no_error(tmp_path):
    """Repro (CI, two runners on one store): a runner ended and removed its ledger between another's
    probe of its lock and the read; FileNotFoundError escaped try_reserve and that runner's last request
    got no row."""
    store = RunStore(tmp_path)

    def come_and_go() -> None:
        passing = StoreBudget(store, BudgetRule(100.0), "emulator", "bo")
        passing.force_reserve(0.01)
        passing.close()

    reader = StoreBudget(store, BudgetRule(100.0), "emulator", "ana")
    errors = _beside(come_and_go, reader.others, rounds=3000)
    assert errors == [], f"{len(errors)} reads failed, e.g. {errors[:1]!r}"
    reader.close()


def test_a_ledger_being_rewritten_is_never_read_as_nothing(tmp_path):
    """A ledger is rewritten on every settle and log; a reader beside the rewrite must still count its money
    (read torn or empty, $1.40 in flight would vanish from the check and the limit could be passed)."""
    store = RunStore(tmp_path)
    busy = StoreBudget(store, BudgetRule(2.80), "emulator", "bo")
    assert busy.try_reserve(1.40)
    reader = StoreBudget(store, BudgetRule(2.80), "emulator", "ana")
    seen: list[Decimal] = []
    errors = _beside(lambda: busy.settle(0.0, 0.0), lambda: seen.append(reader.spent_and_open()[1]), rounds=1500)
    assert errors == []
    assert set(seen) == {Decimal("1.4")}, f"{sum(s != Decimal('1.4') for s in seen)} of {len(seen)} reads lost it"
    busy.close()
    reader.close()


def test_a_budget_check_that_cannot_be_made_skips_the_request_and_the_run_ends_with_every_row(
    emulator, tmp_path, monkeypatch
):
    """A store's budget files unreadable mid-run: the requests it cannot check are not submitted and get
    rows; the run ends with its summary, not a traceback (the first request's row included)."""
    write_rule(RunStore(tmp_path), BudgetRule(100.0))
    real = StoreBudget.try_reserve
    calls = iter(range(100))

    def fails_after_the_first(self: StoreBudget, cost_usd: float) -> bool:
        if next(calls) >= 1:
            raise OSError(5, "Input/output error")
        return real(self, cost_usd)

    monkeypatch.setattr(StoreBudget, "try_reserve", fails_after_the_first)
    result = run(
        Sweep.grid("unreadable", prompt="a kite", cfg_scale=[0.2, 0.5, 0.8]), store=tmp_path, **FAST, concurrency=1
    )
    assert result.count("ok") == 1 and result.count("skipped_budget") == 2
    errors = {r["error"] for r in result.rows if r["status"] == "skipped_budget"}
    assert errors == {"the store's budget could not be checked ([Errno 5] Input/output error); not submitted"}
    assert emulator.stats()["submissions"] == 1


def test_a_ledger_that_cannot_be_updated_is_a_warning_and_waiting_requests_are_still_woken(
    emulator, tmp_path, monkeypatch, caplog
):
    """A settle whose ledger write fails (a full disk) must neither end the run nor leave a request waiting
    for a reservation that was already released."""
    write_rule(RunStore(tmp_path), BudgetRule(1.40))

    real_write = StoreBudget._write_ledger

    def full_disk_once_booked(self: StoreBudget) -> None:
        if self.ledger.reserved_usd == 0:  # the settle and the log after the booking: the disk is full
            raise OSError(28, "No space left on device")
        real_write(self)

    monkeypatch.setattr(StoreBudget, "_write_ledger", full_disk_once_booked)
    with caplog.at_level(logging.WARNING, logger="kling_lab"):
        result = run(Sweep.grid("full", prompt="a kite", cfg_scale=[0.2, 0.8]), store=tmp_path, **FAST, concurrency=2)
    assert result.count("ok") == 1 and result.count("skipped_budget") == 1, result.summary()
    warnings = [r.getMessage() for r in caplog.records if "ledger could not be updated" in r.getMessage()]
    assert len(warnings) == 2 and all("No space left on device" in w for w in warnings), warnings


@pytest.mark.parametrize("where", ["local", "object-storage"])
def test_a_runners_own_ledger_listed_first_hides_no_other(tmp_path, monkeypatch, where):
    """Its own ledger is passed over, not the end of the list: runners listed after it still count."""
    monkeypatch.setenv("KLING_LAB_CACHE", str(tmp_path / "cache"))
    store = RunStore(tmp_path / "store" if where == "local" else f"memory://kling-lab-budget-{uuid.uuid4().hex}/s")
    me = StoreBudget(store, BudgetRule(10), "emulator", "ana")
    other = StoreBudget(store, BudgetRule(10), "emulator", "bo")
    me.key, other.key = f"{LEDGER_DIR}/a-me.json", f"{LEDGER_DIR}/b-other.json"  # mine sorts first
    assert me.try_reserve(1.40) and other.try_reserve(2.80)
    assert me.spent_and_open() == (Decimal(0), Decimal("2.80"))
    assert [led.user for led in me.others()] == ["bo"]
    me.close()
    other.close()


def test_a_log_with_no_row_in_scope_counts_nothing_spent(tmp_path):
    """The sum of no rows is nothing, not a credit that would make room under the limit."""
    store = RunStore(tmp_path)
    store.append([row(5.60, backend="fal"), row(1.40, user="bo")])
    spent = logged_spend(store, BudgetRule(10, per_user=True), "emulator", "ana", this_month())
    assert spent == 0 and str(spent) in {"0", "0.0"}


def test_a_runners_ledger_changes_land_in_order_when_its_threads_overlap(tmp_path, monkeypatch):
    """A runner changes its ledger from a worker thread (check-and-book, settle) and from its event loop
    (rows logged). Repro on object storage: a slow PUT of the older state landed after a newer one, and the
    ledger showed $0 open while $1.40 was reserved, so other runners could pass the limit."""
    monkeypatch.setenv("KLING_LAB_CACHE", str(tmp_path / "cache"))
    store = RunStore(f"memory://kling-lab-budget-{uuid.uuid4().hex}/s")
    runner = StoreBudget(store, BudgetRule(10), "emulator", "ana")
    assert runner.try_reserve(1.40)
    runner.settle(1.40, 1.40)  # charged; its row is about to reach the log
    put, uploading, slow = store.files.put_file, threading.Event(), [True]

    def put_file(local: Path, key: str) -> None:
        if slow.pop() if slow else False:  # the first upload (the row writer's) is slow
            uploading.set()
            time.sleep(0.5)
        put(local, key)

    monkeypatch.setattr(store.files, "put_file", put_file)
    logged = threading.Thread(target=runner.logged, args=(1.40,))
    logged.start()
    assert uploading.wait(10)
    assert runner.try_reserve(1.40)  # the next request, booked while the older state is still uploading
    logged.join(10)
    other = StoreBudget(store, BudgetRule(10), "emulator", "bo")
    assert other.spent_and_open() == (Decimal(0), Decimal("1.4")), "the newest ledger state is the one stored"
    runner.close()
