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
    for name, rid in (("20260101T000000-4242-abc123.jsonl", "other"), ("odd-name.jsonl", "odd")):
        (tmp_path / name).write_text(json.dumps({**event, "request_id": rid}) + "\n")
    pending = Journal(tmp_path).pending()
    assert pending["other"].owner_pid == 4242 and pending["odd"].owner_pid is None
