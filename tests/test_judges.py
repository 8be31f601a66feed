"""Judges over the emulator: the real runner, the real fal-client, real parquet.

The quickstart store (12 clips) is made once per session and copied per test; each test starts
with a reset emulator, so the clips' fal result URLs are gone and judging uploads them (once each).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import kling_lab as kl
from kling_lab.backends.emulator import EmulatorConfig
from kling_lab.errors import InvalidInput
from kling_lab.judges.agreement import cohens_kappa, wilson_interval
from kling_lab.store.judgements import column_prefix
from kling_lab.store.run_store import RunStore
from kling_lab.store.votes import append_vote, vote_row

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(queue_delay_s=0.05, service_time_s=0.1, render_scale=0.25, concurrency=8)


@pytest.fixture(scope="session")
def quickstart_template(tmp_path_factory, emulator_session) -> Path:
    emulator_session.reset(EmulatorConfig(**FAST))
    store = tmp_path_factory.mktemp("quickstart") / "store"
    result = kl.run(ROOT / "experiments" / "quickstart.yaml", store=store, progress=False)
    assert result.count("ok") == 12
    return store


@pytest.fixture
def store(quickstart_template, tmp_path, emulator) -> Path:
    """A copy of the 12-clip quickstart store (the emulator is reset: the clips' result URLs are gone)."""
    copy = tmp_path / "store"
    shutil.copytree(quickstart_template, copy)
    return copy


def judge_submissions(emulator, endpoint: str = "fal-ai/video-understanding") -> int:
    return emulator.stats()["submit_calls"]


# -- the Done-when of issue 17 ---------------------------------------------------------------
def test_vlm_judges_the_12_quickstart_clips_once_and_a_second_call_costs_nothing(store, emulator):
    first = kl.judge(store=store, progress=False)
    assert first.written == 12 and first.count("ok") == 12, first.summary()
    assert first.spent_usd == pytest.approx(0.12)  # $0.01 per 5 s clip
    assert emulator.stats()["submissions"] == 12
    uploads = emulator.stats()["uploads"]
    assert uploads == 12 and max(emulator.stats()["uploads_by_sha256"].values()) == 1

    again = kl.judge(store=store, progress=False)
    assert again.written == 0 and again.spent_usd == 0 and again.cached == 12, again.summary()
    assert emulator.stats()["submissions"] == 12 and emulator.stats()["uploads"] == uploads

    rows = kl.load_judgements(store)
    assert len(rows) == 12 and set(rows["status"]) == {"ok"}
    assert rows["placeholder"].all() and set(rows["backend"]) == {"emulator"}
    assert set(rows["endpoint"]) == {"fal-ai/video-understanding"} and rows["rubric_hash"].nunique() == 1
    assert rows["cost_usd"].sum() == pytest.approx(0.12) and (rows["total_s"] > 0).all()
    assert rows["video_sha256"].is_unique and rows["request_id"].notna().all()
    assert "PLACEHOLDER" in rows["explanation"].iloc[0]
    scores = json.loads(rows["scores_json"].iloc[0])
    assert set(scores) == {
        "prompt_adherence",
        "visual_quality",
        "motion_realism",
        "artifacts",
        "negative_prompt_violations",
    }


def test_load_runs_shows_the_judge_columns_and_effect_query_use_them(store, emulator):
    kl.judge(store=store, progress=False)
    df = kl.load_runs(store)
    for column in ("judge_vlm_prompt_adherence", "judge_vlm_visual_quality", "judge_vlm_motion_realism"):
        assert df[column].between(1, 5).all() and df[column].dtype == "float64", column
    assert df["judge_vlm_artifacts"].eq(1).all() and df["judge_vlm_artifacts_items"].str.contains("placeholder").all()
    assert "judge_vlm_prompt_adherence" not in kl.load_runs(store, judgements=False)

    found = kl.effect(df, param="cfg_scale", metric="judge_vlm_prompt_adherence", within=[])
    assert found.p_value < 0.05, found  # the placeholder's adherence rises with cfg_scale
    by_cfg = df.groupby("cfg_scale")["judge_vlm_prompt_adherence"].mean()
    assert by_cfg.is_monotonic_increasing and by_cfg.iloc[-1] > by_cfg.iloc[0]

    table = kl.query(
        "select count(*) n, min(json_extract(scores_json, '$.prompt_adherence')::int) lo from judgements", store=store
    )
    assert table.loc[0, "n"] == 12 and table.loc[0, "lo"] >= 1


def test_a_cache_hit_run_shares_its_source_judgement(store, emulator):
    kl.judge(store=store, progress=False)
    runs = kl.load_runs(store)
    again = kl.run(ROOT / "experiments" / "quickstart.yaml", store=store, progress=False)  # 12 cache hits
    assert again.cache_hits == 12
    df = kl.load_runs(store)
    assert len(df) == 24 and df["judge_vlm_prompt_adherence"].notna().all()
    assert kl.judge(store=store, progress=False).written == 0  # same videos: nothing to judge
    assert sorted(df["judge_vlm_prompt_adherence"][df["cache_hit"]]) == sorted(runs["judge_vlm_prompt_adherence"])


def test_a_new_rubric_judges_again_under_its_own_hash(store, emulator, tmp_path):
    kl.judge(store=store, progress=False)
    rubric = tmp_path / "hands.yaml"
    rubric.write_text("dimensions:\n  hands: Are hands plausible?\n  mood: {min: 0, max: 10}\n")
    second = kl.judge(store=store, rubric=rubric, name="vlm-hands", progress=False)
    assert second.written == 12 and emulator.stats()["submissions"] == 24
    rows = kl.load_judgements(store)
    assert rows.groupby("judge")["rubric_hash"].nunique().to_dict() == {"vlm": 1, "vlm-hands": 1}
    df = kl.load_runs(store)
    assert column_prefix("vlm-hands") == "judge_vlm_hands_"
    assert df["judge_vlm_hands_hands"].between(1, 5).all() and df["judge_vlm_hands_mood"].between(0, 10).all()
    assert df["judge_vlm_prompt_adherence"].notna().all()  # the first judge's columns stay


def test_a_clip_whose_fal_url_still_answers_is_not_uploaded(tmp_path, emulator):
    store = tmp_path / "fresh"
    kl.run(kl.Sweep.grid("fresh", prompt="A paper boat", cfg_scale=[0.2, 0.8]), store=store, progress=False)
    kl.judge(store=store, progress=False)
    assert emulator.stats()["uploads"] == 0
    sent = kl.load_judgements(store)["arguments_json"].map(json.loads)
    assert all("/_emulator/files/" in a["video_url"] for a in sent)

    emulator.reset(EmulatorConfig(**FAST))  # fal's URLs gone: the clips go through fal storage, once each
    kl.judge(store=store, rubric={"dimensions": {"calm": None}}, name="calm", progress=False)
    kl.judge(store=store, rubric={"dimensions": {"wet": None}}, name="wet", progress=False)
    stats = emulator.stats()
    assert stats["uploads"] == 2 and set(stats["uploads_by_sha256"].values()) == {1}
    assert set(stats["uploads_by_sha256"]) == set(kl.load_runs(store)["video_sha256"])


def test_max_cost_covers_judge_spend(store, emulator):
    result = kl.judge(store=store, max_cost_usd=0.05, concurrency=2, progress=False)
    assert result.count("ok") == 5 and result.count("skipped_budget") == 7, result.summary()
    assert result.spent_usd == pytest.approx(0.05) and emulator.stats()["submissions"] == 5
    rest = kl.judge(store=store, max_cost_usd=1, progress=False)  # skipped ones are judged later, the rest cached
    assert rest.count("ok") == 7 and rest.cached == 5


def test_an_invalid_answer_is_asked_once_more_then_failed_with_both_texts(store, emulator):
    emulator.configure(rate_bad_judge_output=1.0)
    result = kl.judge(store=store, progress=False)
    assert result.count("failed") == 12 and emulator.stats()["submissions"] == 24
    rows = kl.load_judgements(store)
    assert set(rows["error_type"]) == {"invalid_output"} and set(rows["tries"]) == {2}
    assert rows["cost_usd"].tolist() == pytest.approx([0.02] * 12)  # both calls were paid
    assert rows["raw_text"].str.contains("--- asked again ---").all()
    assert emulator.stats()["faults"]["bad_judge_output"] == 24
    assert kl.load_runs(store).filter(like="judge_vlm").empty  # no ok judgement, no columns

    emulator.configure(rate_bad_judge_output=0.0)
    assert kl.judge(store=store, progress=False).count("ok") == 12  # failures are not cached


def test_some_invalid_answers_are_rescued_by_the_second_call(store, emulator):
    emulator.configure(rate_bad_judge_output=0.5)
    result = kl.judge(store=store, progress=False)
    rows = kl.load_judgements(store)
    retried = rows[rows["tries"] == 2]
    assert len(retried) >= 1 and (retried["status"] == "ok").any(), rows[["status", "tries"]]
    assert emulator.stats()["submissions"] == 12 + len(retried)
    assert emulator.stats()["faults"]["bad_judge_output"] == len(retried) + result.count("failed")
    ok_retried = retried[retried["status"] == "ok"]
    assert ok_retried["cost_usd"].tolist() == pytest.approx([0.02] * len(ok_retried))
    assert ok_retried["request_id"].notna().all()


def test_qc_judge_is_local_and_free(store, emulator):
    result = kl.judge(store=store, judge="qc")
    assert result.written == 12 and result.spent_usd == 0 and emulator.stats()["submissions"] == 0
    df = kl.load_runs(store)
    assert (df["judge_qc_motion"] == df["qc_motion"]).all()
    assert kl.judge(store=store, judge="qc").written == 0


# -- pairwise and agreement ----------------------------------------------------------------------
def cast_votes(store: Path, pairs: list[tuple[str, str, str]], voter: str = "simulated") -> None:
    runs = kl.load_runs(store).set_index("run_id")
    for left, right, choice in pairs:
        row = vote_row(
            voter=voter,
            by="negative_prompt",
            left={"run_id": left, "prompt": runs.at[left, "prompt"]},
            right={"run_id": right},
            left_arm="a",
            right_arm="b",
            choice=choice,
        )
        append_vote(RunStore(store), row)


def arm_pairs(store: Path) -> list[tuple[str, str]]:
    """One (negative prompt, no negative prompt) pair per cfg_scale × aspect ratio: 6 pairs."""
    df = kl.load_runs(store)
    pairs = []
    for _, group in df.groupby(["cfg_scale", "aspect_ratio"]):
        with_negative = group[group["negative_prompt"] != ""]["run_id"].iloc[0]
        without = group[group["negative_prompt"] == ""]["run_id"].iloc[0]
        pairs.append((with_negative, without))
    return pairs


def test_pairwise_judges_the_voted_pairs_and_agreement_maps_its_sides(store, emulator):
    pairs = arm_pairs(store)
    cast_votes(store, [(a, b, "left") for a, b in pairs])
    result = kl.judge(judge="pairwise", store=store, progress=False)
    assert result.written == 6 and result.count("ok") == 6
    rows = kl.load_judgements(store, judge="pairwise")
    assert set(rows["preferred"]) <= {"A", "B", "tie"} and rows["other_run_id"].notna().all()
    assert (rows["video_sha256"] < rows["other_video_sha256"]).all()  # one order per pair: cached once
    assert set(rows["endpoint"]) == {"openrouter/router/video"} and set(rows["model"]) == {"google/gemini-2.5-flash"}

    # Votes that say exactly what the judge said (mapped from its A/B onto each vote's sides) agree 100%.
    runs = kl.load_runs(store)
    sha = dict(zip(runs["run_id"], runs["video_sha256"]))
    said = {(r.video_sha256, r.other_video_sha256): r.preferred for r in rows.itertuples()}
    echo = []
    for a, b in pairs:  # vote left=a, right=b; the judge saw the pair in sha256 order
        if (sha[a], sha[b]) in said:
            choice = {"A": "left", "B": "right", "tie": "tie"}[said[(sha[a], sha[b])]]
        else:
            choice = {"A": "right", "B": "left", "tie": "tie"}[said[(sha[b], sha[a])]]
        echo.append((a, b, choice))
    mirror = pd.DataFrame(
        [
            {"left_run_id": a, "right_run_id": b, "choice": c, "voter": "echo", "vote_id": str(i), "prompt": "p"}
            for i, (a, b, c) in enumerate(echo)
        ]
    )
    agreed = kl.judge_agreement(store, judge="pairwise", votes=mirror)
    assert agreed.compared == 6 and agreed.agree == agreed.decisive
    assert agreed.kappa == pytest.approx(1.0) or agreed.decisive == 0
    flipped = mirror.assign(choice=mirror["choice"].map({"left": "right", "right": "left", "tie": "tie"}))
    disagreed = kl.judge_agreement(store, judge="pairwise", votes=flipped)
    assert disagreed.agree == 0 and len(disagreed.disagreements) == disagreed.decisive


def test_judge_agreement_on_simulated_votes_reports_a_wilson_interval(store, emulator):
    pairs = arm_pairs(store)
    cast_votes(store, [(a, b, "left") for a, b in pairs[:4]] + [(b, a, "left") for a, b in pairs[4:]])
    cast_votes(store, [(a, b, "tie") for a, b in pairs[:2]], voter="second")
    kl.judge(store=store, progress=False)  # per-clip vlm scores
    found = kl.judge_agreement(store, judge="vlm")
    assert found.votes == 8 and found.compared == 8 and found.decisive == 6
    assert 0 <= found.ci_low <= found.rate <= found.ci_high <= 1 and found.method == "Wilson score interval"
    assert (found.ci_low, found.ci_high) == pytest.approx(wilson_interval(found.agree, 6))
    assert list(found.per_voter["voter"]) == ["simulated"] and found.per_voter.loc[0, "votes"] == 6
    assert "Wilson" in found.summary() and "The judge is a model" in found.summary()
    assert not pd.isna(found.kappa)
    if len(found.disagreements) > 1:
        opposite = found.disagreements[found.disagreements["judge"] != "tie"]["margin"]
        assert opposite.is_monotonic_decreasing
    assert "<h4>Per voter</h4>" in found._repr_html_()


def test_agreement_without_judgements_says_what_to_do(store, emulator):
    cast_votes(store, [(a, b, "left") for a, b in arm_pairs(store)])
    found = kl.judge_agreement(store, judge="pairwise")
    assert found.compared == 0 and "judge them first" in found.summary()


def test_wilson_and_kappa_against_known_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(10, 10)[1] == pytest.approx(
        1.0
    )
    assert all(pd.isna(x) for x in wilson_interval(0, 0))
    assert cohens_kappa(["left", "left", "right", "right"], ["left", "right", "right", "right"]) == pytest.approx(0.5)
    assert cohens_kappa(["left", "right"], ["left", "right"]) == pytest.approx(1.0)
    assert pd.isna(cohens_kappa([], []))


# -- bad input: one line, nothing sent -------------------------------------------------------------
def test_bad_input_is_refused_before_anything_is_sent(store, emulator, tmp_path):
    with pytest.raises(InvalidInput, match="unknown judge 'nope'"):
        kl.judge(store=store, judge="nope")
    with pytest.raises(InvalidInput, match="no dimensions"):
        kl.judge(store=store, rubric="dimensions: {}\n")
    with pytest.raises(InvalidInput, match="no run with a video"):
        kl.judge(kl.load_runs(store).assign(status="failed"), store=store)
    with pytest.raises(InvalidInput, match="no price known for model"):
        kl.judge(store=store, endpoint="openrouter/router/video", model="acme/unknown-vlm")
    with pytest.raises(InvalidInput, match="takes 1 clip"):
        kl.judge(store=store, judge="pairwise", endpoint="fal-ai/video-understanding")
    assert emulator.stats()["submissions"] == 0
    assert kl.load_judgements(store).empty


# -- the race metric -----------------------------------------------------------------------------
def test_a_race_on_a_judge_score_judges_each_round_once(emulator, tmp_path):
    store = tmp_path / "race"
    sweep = kl.Sweep.grid("judged-race", prompt="A red fox trotting through fresh snow", cfg_scale=[0.1, 0.9])
    metric = kl.judge_metric("vlm", "prompt_adherence", store=store, max_cost_usd=1)
    result = kl.run(
        sweep, strategy="race", metric=metric, higher_is_better=True, max_repeats=4, store=store, progress=False
    )
    assert result.winner is not None and result.winner.request.cfg_scale == 0.9, result.summary()
    assert result.metric == "judge_vlm_prompt_adherence"
    rows = kl.load_judgements(store)
    assert len(rows) == result.clips and rows["video_sha256"].is_unique  # every clip judged once
    assert metric.spent_usd == pytest.approx(0.01 * result.clips)
    df = kl.load_runs(store)
    assert df["judge_vlm_prompt_adherence"].notna().all()


def test_the_report_and_grid_cards_show_judge_scores(store, emulator, tmp_path):
    from kling_lab.views.labels import card

    kl.judge(store=store, progress=False)
    df = kl.load_runs(store)
    page = tmp_path / "report.html"
    kl.report(df, page)
    html = page.read_text()
    assert "judge vlm prompt adherence" in html and "PLACEHOLDER" in html
    shown = dict(card(df.iloc[0].to_dict(), facet_columns=["cfg_scale"], video=None)["metrics"])
    assert shown["judge vlm prompt adherence"] == f"{df['judge_vlm_prompt_adherence'].iloc[0]:.3g}"
    assert "judge vlm artifacts items" not in shown and "motion" in shown
