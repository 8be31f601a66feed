"""The votes dataset: typed rows, one atomic file per vote, an empty store reads as an empty table."""

from __future__ import annotations

import pytest

from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore
from kling_lab.store.votes import SCHEMA, append_vote, load_votes, vote_row

LEFT = {"run_id": "r1", "prompt": "a fox", "sweep_id": "s-1"}
RIGHT = {"run_id": "r2", "prompt": "a fox", "sweep_id": "s-1"}


def test_empty_store_reads_as_typed_empty_frame(tmp_path):
    votes = load_votes(tmp_path / "nothing")
    assert len(votes) == 0 and list(votes.columns) == SCHEMA.names
    assert str(votes["voted_at"].dtype) == "datetime64[us, UTC]"


def test_one_file_per_vote_round_trip(tmp_path):
    store = RunStore(tmp_path)
    for choice in ("left", "tie"):
        append_vote(
            store,
            vote_row(
                voter="ana", by="cfg_scale", left=LEFT, right=RIGHT, left_arm="0.25", right_arm="0.75", choice=choice
            ),
        )
    assert len(list((tmp_path / "votes").glob("*.parquet"))) == 2
    votes = load_votes(tmp_path)
    assert list(votes["choice"]) == ["left", "tie"] and votes["vote_id"].is_unique
    assert (votes["left_run_id"] == "r1").all() and (votes["sweep_id"] == "s-1").all()
    assert str(votes["voter"].dtype).startswith("string") and votes["voted_at"].dt.tz is not None


def test_unknown_choice_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="choice must be one of"):
        vote_row(voter="ana", by="x", left=LEFT, right=RIGHT, left_arm="a", right_arm="b", choice="maybe")
