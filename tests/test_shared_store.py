"""A store on object storage: a real S3-compatible server (moto, standalone) on loopback.

No mocks inside this process: moto runs as its own server process; s3fs talks to it over HTTP.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from kling_lab.errors import InvalidInput
from kling_lab.runner.api import run
from kling_lab.store.query import query
from kling_lab.store.run_store import RunStore, load_runs
from kling_lab.store.sync import sync
from kling_lab.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
SECRET = "S3-SECRET-recognisable-7731"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def bucket(s3_server, monkeypatch, tmp_path, request):
    """A fresh bucket; credentials only in the environment, as a user would set them."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "kling-test-key",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": s3_server,
        "KLING_LAB_CACHE": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(name, value)
    import s3fs

    name = f"b-{request.node.name.replace('_', '-')[:40].lower()}-{os.getpid()}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"


def rows(n: int, start: int = 0, **extra):
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    return [
        {
            "run_id": f"r{i}",
            "sweep_id": "s",
            "experiment": "e",
            "sweep_index": i,
            "fingerprint": f"f{i}",
            "endpoint": "x",
            "backend": "emulator",
            "status": "ok",
            "prompt": "p",
            "negative_prompt": "",
            "cfg_scale": 0.5,
            "aspect_ratio": "16:9",
            "duration_s": 5,
            "repeat": 0,
            "cost_usd": 1.4,
            "user": ["ana", "bo"][i % 2],
            "logged_at": t0 + timedelta(days=i % 14),
            **extra,
        }
        for i in range(start, start + n)
    ]


def test_sweep_into_s3_store_then_cached(emulator, bucket, tmp_path):
    store = f"{bucket}/team"
    sweep = Sweep.grid("s3sweep", prompt="a harbour at night", cfg_scale=[0.2, 0.8])
    first = run(sweep, store=store, progress=False)
    assert first.count("ok") == 2
    df = load_runs(store)
    assert len(df) == 2 and all(p.startswith(f"{store}/videos/") for p in df["video_path"])
    # Videos are fetched lazily into the local cache, and are real videos.
    import av

    local = RunStore(store).video_file(df.loc[0, "video_path"])
    assert str(local).startswith(str(tmp_path / "cache"))
    with av.open(str(local)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    again = run(sweep, store=store, progress=False)
    assert again.submitted == 0 and again.cache_hits == 2
    assert emulator.stats()["submissions"] == 2
    # The journal stayed local and was folded into the shared store when the run ended.
    assert RunStore(store).files.find("journal")


def test_two_writer_processes_at_once(emulator, bucket, tmp_path):
    emulator.configure(service_time_s=0.3)
    store = f"{bucket}/shared"
    files = []
    for name, cfgs in (("alpha", "[0.1, 0.3, 0.5, 0.7]"), ("beta", "[0.2, 0.4, 0.6, 0.8]")):
        f = tmp_path / f"{name}.yaml"
        f.write_text(f"name: {name}\nprompt: a {name} rocket launch\ngrid: {{cfg_scale: {cfgs}}}\n")
        files.append(f)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kling_lab.cli", "run", str(f), "--store", store, "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KLING_LAB_CACHE": str(tmp_path / f"cache-{f.stem}")},
        )
        for f in files
    ]
    for p in procs:
        _out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    df = load_runs(store)
    assert len(df) == 8 and df["run_id"].is_unique and df["fingerprint"].is_unique
    assert set(df["experiment"]) == {"alpha", "beta"}
    expected = {i.fingerprint for f in files for i in Sweep.from_yaml(f)}
    assert set(df["fingerprint"]) == expected
    assert len(RunStore(store).video_keys()) == 8


def test_videos_are_stored_once_by_content(bucket, tmp_path):
    store = RunStore(f"{bucket}/dedupe")
    payload = os.urandom(4096)
    keys = set()
    for _ in range(3):
        tmp = store.new_tmp_path(".mp4")
        tmp.write_bytes(payload)
        import hashlib

        keys.add(store.ingest_video(tmp, hashlib.sha256(payload).hexdigest()))
    assert len(keys) == 1
    assert store.files.find("videos") == keys


def test_sync_local_to_s3_is_idempotent_and_dedupes(emulator, bucket, tmp_path):
    local = tmp_path / "laptop"
    run(Sweep.grid("laptop", prompt="a windmill", cfg_scale=[0.3, 0.6]), store=local, progress=False)
    remote = f"{bucket}/team"
    first = sync(local, remote)
    assert first.rows["runs"] == 2 and first.videos == 2
    second = sync(local, remote)
    assert second.rows["runs"] == 0 and second.videos == 0
    # A second laptop with a copy of the same clip uploads no second object.
    other = RunStore(tmp_path / "laptop2")
    other.append([{**r, "run_id": r["run_id"] + "-copy"} for r in RunStore(local).iter_rows()])
    for key in RunStore(local).video_keys():
        dest = other.root / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((local / key).read_bytes())
    third = sync(other, remote)
    assert third.rows["runs"] == 2 and third.videos == 0
    assert len(load_runs(remote)) == 4


def test_compact_never_shows_a_partial_dataset_to_a_concurrent_reader(bucket):
    store = RunStore(f"{bucket}/compact")
    for i in range(30):
        store.append(rows(1, start=i))
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(len(RunStore(store.location).load()))

    def reads_reach(n: int) -> None:  # wait for reads, not for time: a loaded machine reads slowly
        deadline = time.monotonic() + 120
        while len(seen) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        reads_reach(1)
        merged = store.compact()
        reads_reach(len(seen) + 2)
    finally:
        stop.set()
        thread.join()
    assert merged == 30 and len(store.part_files()) == 1
    assert len(seen) >= 3 and set(seen) == {30}, seen


def test_query_spend_per_person_per_week_and_win_rate(bucket):
    store = RunStore(f"{bucket}/q")
    store.append(rows(28))
    votes = pa.table(
        {
            "vote_id": [f"v{i}" for i in range(6)],
            "by": ["negative_prompt"] * 6,
            "left_arm": ["", "", "blur", "blur", "", "blur"],
            "right_arm": ["blur", "blur", "", "", "blur", ""],
            "choice": ["left", "right", "left", "left", "tie", "right"],
        }
    )
    store.append_table("votes", votes)
    spend = query(
        "select user, date_trunc('week', logged_at) as wk, sum(cost_usd) as usd from runs group by all order by all",
        store,
    )
    assert set(spend["user"]) == {"ana", "bo"} and spend["usd"].sum() == pytest.approx(28 * 1.4)
    wins = query(
        """
        with outcomes as (
          select case choice when 'left' then left_arm when 'right' then right_arm end as winner,
                 left_arm, right_arm from votes where choice in ('left', 'right'))
        select arm, avg(case when winner = arm then 1.0 else 0.0 end) as win_rate from (
          select left_arm as arm, winner from outcomes union all select right_arm, winner from outcomes)
        group by arm order by arm""",
        store,
    )
    assert list(wins["arm"]) == ["", "blur"]
    assert wins["win_rate"].tolist() == pytest.approx([0.4, 0.6])  # "" won 2 of 5 decided votes


def test_store_url_with_credentials_is_refused():
    with pytest.raises(InvalidInput, match="environment"):
        RunStore("s3://AKIA:secret@bucket/prefix")


def test_credentials_never_written(emulator, bucket, tmp_path):
    store = f"{bucket}/creds"
    run(Sweep.grid("creds", prompt="a tram", cfg_scale=[0.5]), store=store, progress=False)
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    objects = fs.find(store)
    assert objects
    for key in objects:
        assert SECRET.encode() not in fs.cat_file(key)
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()


def test_claims_across_machines_use_s3_conditional_writes(bucket, tmp_path):
    """moto honours If-None-Match: * and If-Match on PutObject/DeleteObject (checked by the probe), so a
    claim taken on one machine (here: another claims directory) holds on the other (issue 12 item 6)."""
    from kling_lab.runner.claims import Claims, RemoteLeases
    from kling_lab.store.conditional import ConditionalObjects

    objects = ConditionalObjects.for_store(RunStore(f"{bucket}/leases").files)
    assert objects is not None, "moto supports conditional writes"
    laptop, server = (Claims(tmp_path / m, RemoteLeases(objects)) for m in ("laptop", "server"))
    assert laptop.try_acquire("k")
    assert not server.try_acquire("k")
    assert server.holder("k")["pid"] == os.getpid()
    laptop.release("k")
    assert server.try_acquire("k")
    server.release("k")

    # A lease its machine stopped renewing (killed) expires and is taken over by exactly one other.
    dead = Claims(tmp_path / "dead", RemoteLeases(objects, lease_s=0.0))
    assert dead.try_acquire("j")
    taker = Claims(tmp_path / "taker", RemoteLeases(objects))
    assert taker.try_acquire("j")
    dead.release("j")  # the late release of the dead machine's lease must not free the taker's
    assert not Claims(tmp_path / "third", RemoteLeases(objects)).try_acquire("j")


def test_a_conditional_write_on_a_changed_object_is_refused_not_an_error(bucket):
    """S3 answers 412; s3fs turns it into OSError(EINVAL) on a replace or delete. A renewal or a takeover
    that lost the race once raised that error (a heartbeat then stopped renewing the leases after it)."""
    from kling_lab.store.conditional import ConditionalObjects

    objects = ConditionalObjects.for_store(RunStore(f"{bucket}/cas").files)
    assert objects is not None
    first = objects.create("k", b"1")
    assert first is not None and objects.create("k", b"2") is None
    second = objects.replace("k", b"3", first)
    assert second is not None and objects.read("k") == (b"3", second)
    assert objects.replace("k", b"4", first) is None, "the version it was read at changed"
    assert objects.delete("k", first) is False and objects.read("k") == (b"3", second)
    assert objects.delete("k", second) is True and objects.read("k") is None
    assert objects.replace("k", b"5", second) is None, "gone"


def test_s3_claims_are_renewed_and_say_when_taken_over(bucket, tmp_path, caplog):
    from kling_lab.runner.claims import Claims, RemoteLeases
    from kling_lab.store.conditional import ConditionalObjects

    objects = ConditionalObjects.for_store(RunStore(f"{bucket}/leases").files)
    assert objects is not None
    late = RemoteLeases(objects, lease_s=-1.0)  # every lease it writes has expired already, until renewed
    laptop, server = Claims(tmp_path / "laptop", late), Claims(tmp_path / "server", RemoteLeases(objects))
    assert laptop.try_acquire("k")
    late.lease_s = 300.0
    with caplog.at_level(logging.WARNING, logger="kling_lab.runner"):
        laptop.heartbeat()  # renewed in time: still the laptop's
    assert "taken over" not in caplog.text
    assert not server.try_acquire("k") and server.holder("k")["pid"] == os.getpid()
    laptop.release("k")  # with the renewed lease's version
    assert server.try_acquire("k"), "released: free for the next machine"
    server.release("k")

    late.lease_s = -1.0
    assert laptop.try_acquire("j")
    assert server.holder("j") is None, "an expired lease has no holder"
    assert server.try_acquire("j")
    with caplog.at_level(logging.WARNING, logger="kling_lab.runner"):
        laptop.heartbeat()
    assert "the claim on j was taken over by another machine" in caplog.text
    laptop.release("j")  # must not free the server's lease
    assert not Claims(tmp_path / "third", RemoteLeases(objects)).try_acquire("j")
    server.release("j")


def test_s3_claims_survive_unreadable_leases_a_release_in_between_and_a_store_error(bucket, tmp_path, caplog):
    import s3fs

    from kling_lab.runner.claims import Claims, RemoteLeases
    from kling_lab.store.conditional import ConditionalObjects

    objects = ConditionalObjects.for_store(RunStore(f"{bucket}/leases").files)
    assert objects is not None
    claims = Claims(tmp_path / "a", RemoteLeases(objects))
    # Lease objects nobody can read (torn, no expiry, an expiry that is no time) are free.
    for key, body in {"torn": b'{"pid": 1, "expi', "no-expiry": b'{"pid": 1}', "odd": b'{"expires_at": 5}'}.items():
        assert objects.create(f"claims/{key}.json", body) is not None
        assert claims.holder(key) is None and claims.try_acquire(key), key
        claims.release(key)

    # The other machine lets go exactly between our create (refused) and our read (nothing there).
    other = Claims(tmp_path / "b", RemoteLeases(objects))

    class LetGoMeanwhile(ConditionalObjects):
        def read(self, key: str):
            other.release("r")
            return super().read(key)

    assert other.try_acquire("r")
    racer = Claims(tmp_path / "c", RemoteLeases(LetGoMeanwhile(objects.files)))
    assert racer.try_acquire("r") and not other.try_acquire("r")
    racer.release("r")

    # A release the store refuses with an error is only a warning: the lease expires by itself, and the
    # local lock goes at once.
    class DeleteFails(ConditionalObjects):
        def delete(self, key: str, etag: str) -> bool:
            raise OSError("the store is unreachable")

    leaving = Claims(tmp_path / "e", RemoteLeases(DeleteFails(objects.files)))
    assert leaving.try_acquire("y")
    with caplog.at_level(logging.WARNING, logger="kling_lab.runner"):
        leaving.release("y")
    assert "could not release the claim on y in the store (the store is unreachable)" in caplog.text
    assert Claims(tmp_path / "e").try_acquire("y"), "the local lock was released"

    # The store fails (its bucket is gone): the error is raised, and the local lock is not kept.
    name = f"{bucket[5:]}-gone"
    s3 = s3fs.S3FileSystem(skip_instance_cache=True)
    s3.mkdir(name)
    doomed = ConditionalObjects.for_store(RunStore(f"s3://{name}/leases").files)
    assert doomed is not None
    s3.rm(name, recursive=True)
    broken = Claims(tmp_path / "d", RemoteLeases(doomed))
    with pytest.raises(Exception):  # noqa: B017 - whatever s3fs makes of NoSuchBucket
        broken.try_acquire("x")
    assert list((tmp_path / "d").iterdir()) == [], "no lock file left behind"
    assert Claims(tmp_path / "d").try_acquire("x"), "and no lock held by this process"

    # A claim another machine holds: the local lock is dropped (and its file removed) at once.
    assert other.try_acquire("held")
    assert not claims.try_acquire("held") and not (tmp_path / "a" / "held.lock").exists()
    other.release_all()
    claims.release_all()


def test_the_store_budget_lock_on_s3_waits_takes_over_an_expired_one_and_gives_up(bucket, monkeypatch):
    """The store budget's check-and-book runs under an S3 conditional-write lock (kling_lab.store.budget)."""
    from kling_lab.store import budget as store_budget
    from kling_lab.store.budget import LOCK_KEY, BudgetRule, StoreBudget
    from kling_lab.store.conditional import ConditionalObjects

    store = RunStore(f"{bucket}/budget")
    objects = ConditionalObjects.for_store(store.files)
    assert objects is not None
    runner = StoreBudget(store, BudgetRule(5.60), "emulator", "ana")
    monkeypatch.setattr(store_budget, "LOCK_LEASE_S", 1.0)  # a runner waits up to 4 leases for the lock

    def lock(expires_in_s: float) -> bytes:
        return json.dumps({"expires_at": (datetime.now(UTC) + timedelta(seconds=expires_in_s)).isoformat()}).encode()

    def reserve_in_thread(usd: float) -> tuple[threading.Event, list[bool]]:
        done, got = threading.Event(), []
        threading.Thread(target=lambda: (got.append(runner.try_reserve(usd)), done.set()), daemon=True).start()
        return done, got

    # Another machine holds it: wait, and book once it lets go.
    etag = objects.create(LOCK_KEY, lock(60))
    assert etag is not None
    done, got = reserve_in_thread(1.40)
    assert not done.wait(0.3), "it booked while another machine held the lock"
    objects.delete(LOCK_KEY, etag)
    assert done.wait(60) and got == [True] and objects.read(LOCK_KEY) is None, "released after booking"
    # Its machine died holding it: once it expires, it is taken over (no release ever comes).
    assert objects.create(LOCK_KEY, lock(0.5)) is not None
    done, got = reserve_in_thread(1.40)
    assert done.wait(60) and got == [True] and objects.read(LOCK_KEY) is None
    assert objects.create(LOCK_KEY, lock(-1)) is not None  # expired already: taken over at once
    assert runner.try_reserve(1.40) and objects.read(LOCK_KEY) is None
    # Held and renewed past every wait: an error, not a hang, and nothing booked.
    assert objects.create(LOCK_KEY, lock(600)) is not None
    monkeypatch.setattr(store_budget, "LOCK_LEASE_S", 0.05)
    with pytest.raises(OSError, match="stayed taken"):
        runner.try_reserve(1.40)
    assert runner.ledger.reserved_usd == pytest.approx(4.20)
    # Its own lock is a lease into the future: another machine waits instead of taking it over at once.
    monkeypatch.setattr(store_budget, "LOCK_LEASE_S", 30.0)
    objects.delete(LOCK_KEY, objects.read(LOCK_KEY)[1])
    with runner._locked():
        held = objects.read(LOCK_KEY)
        assert held is not None
        expires = datetime.fromisoformat(json.loads(held[0])["expires_at"])
        assert expires > datetime.now(UTC) + timedelta(seconds=20)
    runner.close()
    assert not store.files.find("budget/ledger")


def test_two_machines_running_one_sweep_into_s3_pay_once(emulator, bucket, tmp_path):
    emulator.configure(service_time_s=0.5)
    store = f"{bucket}/twice"
    sweep_file = tmp_path / "same.yaml"
    sweep_file.write_text("name: same\nprompt: a lantern in fog\ngrid: {cfg_scale: [0.1, 0.4, 0.7]}\n")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kling_lab.cli", "run", str(sweep_file), "--store", store, "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KLING_LAB_CACHE": str(tmp_path / f"machine-{m}")},  # separate local disks
        )
        for m in ("a", "b")
    ]
    for p in procs:
        _out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    stats = emulator.stats()
    assert sorted(stats["submissions_by_fingerprint"].values()) == [1, 1, 1], stats["submissions_by_fingerprint"]
    df = load_runs(store)
    assert (df["cache_hit"] == False).sum() == 3  # noqa: E712
