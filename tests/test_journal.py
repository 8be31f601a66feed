"""Journal: fsync'ed events, pending = submitted without done, torn lines, prune."""

from datetime import UTC, datetime

from kling_lab.runner.journal import Journal

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def submit(j, rid, fp="f"):
    j.submitted(
        request_id=rid,
        fingerprint=fp,
        backend="emulator",
        endpoint="e",
        input={"prompt": "p"},
        submitted_at=NOW,
        sweep={"sweep_id": "s", "repeat": 0},
    )


def test_pending_until_done(tmp_path):
    j = Journal(tmp_path)
    submit(j, "a")
    submit(j, "b")
    j.downloaded(request_id="a", video_path="videos/x.mp4", completed_at=NOW)
    assert set(j.pending()) == {"a", "b"}
    assert j.pending()["a"].downloaded == {"video_path": "videos/x.mp4", "completed_at": NOW}
    j.done(request_id="a", run_id="r", status="ok")
    assert set(Journal(tmp_path).pending()) == {"b"}


def test_done_in_another_process_file(tmp_path):
    first = Journal(tmp_path)
    submit(first, "a")
    first.close()
    second = Journal(tmp_path)
    second.done(request_id="a", run_id="r", status="ok")
    second.close()
    assert Journal(tmp_path).pending() == {}


def test_torn_last_line_is_ignored(tmp_path):
    j = Journal(tmp_path)
    submit(j, "a")
    j.close()
    with open(j.path, "a") as fh:
        fh.write('{"event": "submitted", "request_id": "b", "fingerp')
    assert set(Journal(tmp_path).pending()) == {"a"}


def test_prune_only_when_nothing_pending(tmp_path):
    j = Journal(tmp_path)
    submit(j, "a")
    j.close()
    assert Journal(tmp_path).prune() == 0
    k = Journal(tmp_path)
    k.done(request_id="a", run_id="r", status="ok")
    k.close()
    assert Journal(tmp_path).prune() == 2
    assert list(tmp_path.glob("*.jsonl")) == []


def test_all_request_ids_are_the_submitted_ones(tmp_path):
    j = Journal(tmp_path)
    submit(j, "a")
    j.downloaded(request_id="a", video_path="videos/x.mp4")
    j.done(request_id="a", run_id="r", status="ok")
    submit(j, "b")
    j.done(request_id="c", run_id="r", status="logged")  # a done without its submitted: not an id we sent
    assert Journal(tmp_path).all_request_ids() == {"a", "b"}


def test_prune_keeps_the_file_this_journal_is_writing(tmp_path):
    first = Journal(tmp_path)
    submit(first, "a")
    first.close()
    live = Journal(tmp_path)
    live.done(request_id="a", run_id="r", status="ok")  # open: its file is being written
    assert live.prune() == 1 and list(tmp_path.glob("*.jsonl")) == [live.path]
    live.close()
    assert live.prune() == 1 and list(tmp_path.glob("*.jsonl")) == []


def test_the_owner_pid_comes_from_the_file_name(tmp_path):
    import json
    import os

    j = Journal(tmp_path)
    submit(j, "mine")
    j.close()
    assert Journal(tmp_path).pending()["mine"].owner_pid == os.getpid()
    event = {"event": "submitted", "fingerprint": "f", "backend": "b", "endpoint": "e", "input": {}}
    event["submitted_at"] = NOW.isoformat()
    names = {
        "20260101T000000-4242-abc123.jsonl": "other",
        "odd-name.jsonl": "odd",
        "a-b-c.jsonl": "abc",
        "odd-42.jsonl": "two",
    }
    for name, rid in names.items():
        (tmp_path / name).write_text(json.dumps({**event, "request_id": rid}) + "\n")
    pending = Journal(tmp_path).pending()
    assert pending["other"].owner_pid == 4242
    assert pending["odd"].owner_pid is None and pending["abc"].owner_pid is None and pending["two"].owner_pid is None


def intent(j, fp="f"):
    return j.intent(fingerprint=fp, backend="emulator", endpoint="e", input={"prompt": "p"}, sweep={}, price_usd=1.4)


def events(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_prune_never_removes_a_live_runners_file(tmp_path):
    """Its intent is in flight (the POST may be on the wire): the submitted event goes into that file next."""
    dead = Journal(tmp_path)
    submit(dead, "a")
    dead.done(request_id="a", run_id="r", status="ok")
    dead.close()
    live = Journal(tmp_path)
    intent(live)
    dead.path.rename(tmp_path / "99991231T235959-1-ffffff.jsonl")  # listed after the live file
    assert Journal(tmp_path).prune() == 1
    assert list(tmp_path.glob("*.jsonl")) == [live.path]
    live.close()


def test_a_file_another_runner_pruned_meanwhile_is_no_error(tmp_path):
    class Listed(Journal):
        def files(self):
            return [*super().files(), self.directory / "20260101T000000-1-gone00.jsonl"]  # listed, then removed

    j = Journal(tmp_path)
    submit(j, "a")
    j.done(request_id="a", run_id="r", status="ok")
    j.close()
    assert Listed(tmp_path).prune() == 2 and list(tmp_path.glob("*.jsonl")) == []


def test_the_journal_directory_is_created_with_its_parents(tmp_path):
    j = Journal(tmp_path / "new-store" / "journal")
    submit(j, "a")
    j.close()
    assert set(Journal(tmp_path / "new-store" / "journal").pending()) == {"a"}


def test_blank_and_torn_lines_are_skipped_and_the_rest_is_read(tmp_path):
    import json

    event = {"event": "submitted", "fingerprint": "f", "backend": "b", "endpoint": "e", "input": {}}
    event["submitted_at"] = NOW.isoformat()
    lines = [json.dumps({**event, "request_id": "a"}), "", '{"event": "submitted", "requ', "   ", "[1, 2]"]
    lines.append(json.dumps({k: v for k, v in {**event, "request_id": "no-input"}.items() if k != "input"}))
    lines.append(json.dumps({**event, "request_id": "numeric-time", "submitted_at": 1700000000}))
    lines.append(json.dumps({**event, "request_id": "bad-time", "submitted_at": "yesterday"}))
    lines.append(json.dumps({**event, "request_id": "b"}))
    (tmp_path / "20260101T000000-4242-abc123.jsonl").write_text("\n".join(lines) + "\n")
    assert set(Journal(tmp_path).pending()) == {"a", "b"}, "only whole events are read"


def test_an_ambiguous_submit_costs_its_intents_price(tmp_path):
    import json

    j = Journal(tmp_path)
    paid = intent(j, "paid")
    free = j.intent(fingerprint="free", backend="emulator", endpoint="e", input={}, sweep={}, price_usd=0.0)
    j.close()
    old = {"event": "intent", "intent_id": "old", "fingerprint": "old", "at": NOW.isoformat()}  # no price recorded
    malformed = {"event": "unanswered", "intent_id": "old", "error": "no ambiguous id"}  # skipped
    (tmp_path / "20260101T000000-4242-abc123.jsonl").write_text(json.dumps(old) + "\n" + json.dumps(malformed) + "\n")
    prices = {a.ambiguous_id: a.price_usd for a in Journal(tmp_path).ambiguous()}
    assert prices == {paid: 1.4, free: 0.0, "old": 0.0}


def test_only_an_orphan_found_at_fal_is_journaled_as_adopted(tmp_path):
    j = Journal(tmp_path)
    submit(j, "sent")
    j.submitted(
        request_id="found",
        fingerprint="f",
        backend="emulator",
        endpoint="e",
        input={},
        submitted_at=NOW,
        sweep={},
        adopted=True,
    )
    pending = Journal(tmp_path).pending()
    assert pending["sent"].adopted is False and pending["found"].adopted is True


def test_which_submits_are_ambiguous_while_their_process_lives_and_after_it_died(tmp_path):
    j = Journal(tmp_path)
    sent = intent(j, "sent")  # the process dies with this POST on the wire
    answered = intent(j, "answered")
    j.submitted(
        request_id="r1",
        fingerprint="answered",
        backend="emulator",
        endpoint="e",
        input={},
        submitted_at=NOW,
        sweep={},
        intent_id=answered,
    )
    refused = intent(j, "refused")
    j.intent_closed(intent_id=refused, reason="http_422")
    lost = intent(j, "lost")
    unanswered = j.unanswered(intent_id=lost, error="the connection dropped after the POST")
    j.intent_closed(intent_id=lost, reason="submit_unanswered")
    settled = intent(j, "settled")
    looked_up = j.unanswered(intent_id=settled, error="no answer")
    j.resolved(ambiguous_id=looked_up, request_id=None, how="fal lists no such request")
    j.intent_closed(intent_id=settled, reason="submit_unanswered")
    at = {ev.get("ambiguous_id") or ev["intent_id"]: ev["at"] for ev in events(j.path) if "at" in ev}

    assert [a.ambiguous_id for a in j.ambiguous()] == [unanswered], "its own intents are still being submitted"
    [seen] = Journal(tmp_path).ambiguous()  # another runner's view: the writer is alive
    assert seen.ambiguous_id == unanswered and seen.owner_alive and seen.fingerprint == "lost"
    assert seen.since == datetime.fromisoformat(at[lost]) and seen.until == datetime.fromisoformat(at[unanswered])
    assert seen.price_usd == 1.4 and seen.input == {"prompt": "p"}

    j.close()  # the process died
    after = {a.ambiguous_id: a for a in Journal(tmp_path).ambiguous()}
    assert set(after) == {unanswered, sent}
    assert after[sent].until is None and not after[sent].owner_alive and not after[unanswered].owner_alive
    assert after[sent].since == datetime.fromisoformat(at[sent])


def test_a_write_torn_by_a_full_disk_is_retried_then_kept_and_its_fragment_ended(tmp_path):
    """RLIMIT_FSIZE makes the kernel cut a write short and then refuse (EFBIG), as a full disk does: the
    event is retried (a pause between tries, none after the last), kept in memory, and written once there
    is room after a newline that ends the torn fragment, so no later event is lost with it."""
    import subprocess
    import sys

    code = f"""
import resource, signal
from datetime import UTC, datetime
from kling_lab.runner import journal
from kling_lab.runner.journal import Journal, JournalWriteError

pauses = []
journal.time.sleep = pauses.append
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
j = Journal({str(tmp_path)!r})

def submit(rid):
    j.submitted(request_id=rid, fingerprint="f", backend="emulator", endpoint="e", input={{"prompt": "p" * 200}},
                submitted_at=datetime(2026, 11, 24, tzinfo=UTC), sweep={{}})

submit("a")
resource.setrlimit(resource.RLIMIT_FSIZE, (j.path.stat().st_size + 40, resource.RLIM_INFINITY))
try:
    submit("b")
except JournalWriteError as exc:
    print("raised:", exc)
print("pauses:", pauses, "unwritten:", [e["request_id"] for e in j.unwritten])
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
j.done(request_id="a", run_id="r", status="ok")
print("unwritten after:", j.unwritten)

def room_after_two_pauses(seconds):  # a disk that is full for two tries, then has room again
    pauses.append(seconds)
    if len(pauses) == 2:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

pauses.clear()
resource.setrlimit(resource.RLIMIT_FSIZE, (j.path.stat().st_size + 40, resource.RLIM_INFINITY))
journal.time.sleep = room_after_two_pauses
submit("c")
print("third try:", pauses, j.unwritten)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "raised: the journal could not be written (File too large)" in done.stdout
    assert "pauses: [0.2, 0.2] unwritten: ['b']" in done.stdout, "three tries, 0.2 s apart; " + done.stdout
    assert "unwritten after: []" in done.stdout
    assert "third try: [0.2, 0.2] []" in done.stdout, "written at the third try, without an error"
    [path] = tmp_path.glob("*.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 6, "a, the torn fragment of b, b, the done of a, the torn fragment of c, c"
    assert not lines[1].endswith("}") and not lines[4].endswith("}")
    assert set(Journal(tmp_path).pending()) == {"b", "c"}
