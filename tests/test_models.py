"""The model registry: facts read from fal's pages, price rules, one-line input errors, sweeps across
models, per-model inputs, user prices, and models added in code. Pure: no emulator, no fixtures."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from kling_lab.errors import InvalidRequest, SweepFileError
from kling_lab.models import (
    DEFAULT_MODEL,
    Endpoint,
    Model,
    PerClip,
    get_model,
    model_for_endpoint,
    model_names,
    parse_request,
    register_model,
)
from kling_lab.models.kling import KlingTextToVideo
from kling_lab.request import ENDPOINT, KlingRequest
from kling_lab.sweep import Sweep


@pytest.fixture(autouse=True)
def _registry_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models a test registers are gone after it."""
    import kling_lab.models as registry

    registry.models()  # load the built-ins first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_BY_ENDPOINT", dict(registry._BY_ENDPOINT))


def request(alias: str, **inputs):
    return parse_request(get_model(alias), {"prompt": "a fox", **inputs})


def test_the_default_is_kling_2_0_master_and_its_fingerprints_are_unchanged():
    model = get_model()
    assert model.alias == DEFAULT_MODEL == "kling-2.0-master"
    assert model.t2v is not None and model.t2v.id == ENDPOINT
    r = request(DEFAULT_MODEL)
    # The same pinned value tests/test_request.py checks for KlingRequest: old caches still hit.
    assert r.fingerprint() == "b2faf3af5810da8419a929b014d236ba"
    assert r.arguments() == KlingRequest.parse({"prompt": "a fox"}).arguments()
    assert Sweep.grid("s", prompt="a fox").items[0].fingerprint == "b2faf3af5810da8419a929b014d236ba"


@pytest.mark.parametrize(
    ("alias", "inputs", "usd"),
    [
        ("kling-2.0-master", {}, 1.40),
        ("kling-2.0-master", {"duration": "10"}, 2.80),
        ("kling-2.1-master", {}, 1.40),
        ("kling-2.5-turbo-pro", {}, 0.35),
        ("kling-2.5-turbo-pro", {"duration": 10}, 0.70),
        ("veo-3", {"duration": "8s", "generate_audio": False}, 1.60),
        ("veo-3", {"duration": "8s"}, 3.20),  # audio on by default: $0.40/s
        ("veo-3-fast", {"duration": "4s", "generate_audio": False}, 0.40),
        ("veo-3-fast", {"duration": 6}, 0.90),
        ("seedance-1-pro-fast", {}, 0.243),  # 1920x1080 x 24 fps x 5 s / 1024 tokens at $1 per million
        ("hailuo-2.3-standard", {}, 0.28),
        ("hailuo-2.3-standard", {"duration": "10"}, 0.56),
    ],
)
def test_price_rules(alias: str, inputs: dict, usd: float) -> None:
    assert request(alias, **inputs).cost_usd() == pytest.approx(usd)


def test_image_to_video_prices_and_endpoints():
    model = get_model("kling-2.1-pro")
    assert model.t2v is None and model.i2v is not None
    args = {"prompt": "x", "image_url": "https://example.com/a.png"}
    assert model.i2v.cost(args) == Decimal("0.49")
    assert get_model("kling-2.1-standard").i2v.cost(args) == Decimal("0.28")
    assert get_model("kling-2.5-turbo-pro").i2v.end_image_field == "tail_image_url"
    assert get_model("hailuo-02-standard").i2v.cost({**args, "resolution": "512P"}) == Decimal("0.017") * 6


def test_facts_kling_takes_no_seed_veo_has_no_square():
    for alias in model_names():
        model = get_model(alias)
        for endpoint in model.endpoints:
            assert endpoint.source_url.startswith("https://fal.ai/") and endpoint.read_on
            assert model_for_endpoint(endpoint.id) is model
        if model.family == "kling":
            assert "seed" not in model.capabilities
    with pytest.raises(InvalidRequest, match=r'veo-3: aspect_ratio: must be one of "16:9", "9:16"; got \'1:1\''):
        request("veo-3", aspect_ratio="1:1")
    assert {"seed", "audio"} <= get_model("veo-3").capabilities
    assert "end_frame" in get_model("kling-2.5-turbo-pro").capabilities


@pytest.mark.parametrize(
    ("alias", "inputs", "needle"),
    [
        ("kling-2.0-master", {"seed": 3}, "kling-2.0-master: seed: not an input of"),
        ("veo-3-fast", {"cfg_scale": 0.5}, "veo-3-fast: cfg_scale: not an input of fal-ai/veo3/fast"),
        ("veo-3", {"duration": "5"}, 'veo-3: duration: must be one of "4s", "6s", "8s"; got \'5\''),
        (
            "kling-2.5-turbo-pro",
            {"cfg_scale": 2},
            "kling-2.5-turbo-pro: cfg_scale: must be a finite number between 0 and 1",
        ),
        ("seedance-1-pro-fast", {"duration": "20"}, "seedance-1-pro-fast: duration: must be one of"),
        ("hailuo-2.3-standard", {"negative_prompt": "x"}, "hailuo-2.3-standard: negative_prompt: not an input"),
        ("kling-2.1-pro", {}, "kling-2.1-pro: image: required"),
        ("veo-3", {"image_url": "https://x/a.png"}, "veo-3: image_url: not an input"),
    ],
)
def test_bad_input_names_the_model_the_input_and_what_is_allowed(alias: str, inputs: dict, needle: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        request(alias, **inputs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_unknown_model_lists_the_known_aliases():
    with pytest.raises(InvalidRequest) as info:
        get_model("kling-9")
    assert "unknown model 'kling-9'" in str(info.value)
    assert all(alias in str(info.value) for alias in ("kling-2.0-master", "veo-3", "seedance-1-pro-fast"))


def test_a_cross_model_sweep_with_per_model_inputs():
    sweep = Sweep.grid(
        "cross",
        prompt=["a fox", "a lighthouse"],
        model=["kling-2.0-master", "kling-2.5-turbo-pro", "veo-3-fast"],
        repeats=2,
        models={"veo-3-fast": {"duration": "4s", "generate_audio": False}, "kling-2.0-master": {"cfg_scale": 0.7}},
    )
    assert len(sweep) == 12
    assert sweep.models == ["kling-2.0-master", "kling-2.5-turbo-pro", "veo-3-fast"]
    kling = [i for i in sweep if i.model == "kling-2.0-master"]
    assert {i.request.cfg_scale for i in kling} == {0.7}
    assert {i.request.value("cfg_scale") for i in sweep if i.model == "kling-2.5-turbo-pro"} == {0.5}
    estimate = sweep.estimate()
    assert estimate.by_model["kling-2.0-master"].usd == pytest.approx(4 * 1.40)
    assert estimate.by_model["kling-2.5-turbo-pro"].usd == pytest.approx(4 * 0.35)
    assert estimate.by_model["veo-3-fast"].usd == pytest.approx(4 * 0.40)
    assert estimate.total_usd == pytest.approx(5.60 + 1.40 + 1.60)
    text = str(estimate)
    assert "kling-2.5-turbo-pro" in text and "$1.40" in text and "veo-3-fast" in text and "$1.60" in text


def test_a_shared_input_one_model_lacks_is_an_error_unless_set_per_model():
    with pytest.raises(InvalidRequest, match="veo-3-fast: cfg_scale: not an input"):
        Sweep.grid("x", prompt="a", cfg_scale=0.3, model=["kling-2.0-master", "veo-3-fast"])
    Sweep.grid(
        "x", prompt="a", model=["kling-2.0-master", "veo-3-fast"], models={"kling-2.0-master": {"cfg_scale": 0.3}}
    )


def test_a_model_without_a_confirmed_price_takes_the_users():
    sweep = Sweep.grid("x", prompt="a", model="hailuo-02-standard")
    assert sweep.unpriced() == {"hailuo-02-standard": 1}
    assert "price unknown: give prices.hailuo-02-standard" in str(sweep.estimate())
    priced = Sweep.grid(
        "x", prompt="a", model="hailuo-02-standard", prices={"hailuo-02-standard": {"usd_per_clip": 0.27}}
    )
    assert priced.unpriced() == {} and priced.total_usd() == pytest.approx(0.27)
    per_second = Sweep.grid("x", prompt="a", model="veo-3", prices={"veo-3": {"usd_per_second": 0.5}})
    assert per_second.total_usd() == pytest.approx(4.0)  # the user's price wins: 8 s x $0.50
    with pytest.raises(SweepFileError, match="prices.veo-3: give exactly one of usd_per_clip, usd_per_second"):
        Sweep.grid("x", prompt="a", model="veo-3", prices={"veo-3": {"usd": 1}})


def test_sweep_files_name_models_inputs_and_prices(tmp_path: Path):
    path = tmp_path / "cross.yaml"
    path.write_text(
        "name: cross\nprompt: a fox\n"
        "grid: {model: [kling-2.0-master, veo-3-fast, hailuo-02-standard]}\n"
        "models:\n  veo-3-fast: {duration: 4s}\n"
        "prices:\n  hailuo-02-standard: {usd_per_clip: 0.3}\n"
    )
    sweep = Sweep.from_yaml(path)
    assert [i.model for i in sweep] == ["kling-2.0-master", "veo-3-fast", "hailuo-02-standard"]
    assert sweep.total_usd() == pytest.approx(1.40 + 0.60 + 0.30)
    for text, needle in [
        ("prompt: a\nmodels: {kling-7: {cfg_scale: 1}}\n", "models.kling-7: unknown model"),
        ("prompt: a\nmodel: nope\n", "unknown model 'nope'"),
        ("prompt: a\nprices: {veo-3: {usd_per_clip: cheap}}\n", "prices.veo-3.usd_per_clip: must be an amount in USD"),
    ]:
        path.write_text(text)
        with pytest.raises((SweepFileError, InvalidRequest)) as info:
            Sweep.from_yaml(path)
        assert needle in str(info.value) and "\n" not in str(info.value)


def png(path: Path, size=(64, 36)) -> Path:
    Image.new("RGB", size, (200, 80, 40)).save(path)
    return path


def test_a_local_image_picks_image_to_video_and_its_sha256_is_in_the_fingerprint(tmp_path: Path):
    one, two = png(tmp_path / "a.png"), png(tmp_path / "b.png", (64, 64))
    sweep = Sweep.grid("i2v", prompt="a fox", image=[str(one), str(two)], model="kling-2.1-master")
    first, second = sweep.items
    assert first.request.endpoint_id == "fal-ai/kling-video/v2.1/master/image-to-video"
    assert first.request.arguments()["image_url"].startswith("sha256:")
    assert first.fingerprint != second.fingerprint
    moved = tmp_path / "elsewhere.png"
    moved.write_bytes(one.read_bytes())
    again = Sweep.grid("i2v", prompt="a fox", image=str(moved), model="kling-2.1-master")
    assert again.items[0].fingerprint == first.fingerprint  # the content counts, not the path
    url = Sweep.grid("i2v", prompt="a fox", image="https://example.com/a.png", model="kling-2.1-master")
    assert url.items[0].request.arguments()["image_url"] == "https://example.com/a.png"
    assert first.request.columns()["image_sha256"] == first.request.images["image"].sha256


def test_bad_images_are_input_errors_before_anything_is_uploaded(tmp_path: Path):
    with pytest.raises(InvalidRequest, match="image: no such image file"):
        Sweep.grid("x", prompt="a", image=str(tmp_path / "missing.png"), model="kling-2.1-master")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(InvalidRequest, match="notes.png is not an image"):
        Sweep.grid("x", prompt="a", image=str(text), model="kling-2.1-master")
    with pytest.raises(InvalidRequest, match="veo-3: image: this model has no image-to-video endpoint"):
        Sweep.grid("x", prompt="a", image=str(png(tmp_path / "a.png")), model="veo-3")
    with pytest.raises(InvalidRequest, match="kling-2.1-master: end_image: not an input"):
        Sweep.grid(
            "x", prompt="a", image=str(tmp_path / "a.png"), end_image=str(tmp_path / "a.png"), model="kling-2.1-master"
        )
    big = png(tmp_path / "big.png", (800, 600))
    small = register_model(
        Model("tiny-i2v", "Tiny", "test", i2v=_endpoint("test/tiny/image-to-video", image=True), max_image_bytes=100)
    )
    with pytest.raises(InvalidRequest, match=r"tiny-i2v: image: .*big.png has \d+ bytes, more than the 100"):
        Sweep.grid("x", prompt="a", image=str(big), model=small.alias)


def _endpoint(endpoint_id: str, *, image: bool = False) -> Endpoint:
    from kling_lab.models.kling import KlingImageToVideo

    return Endpoint(
        id=endpoint_id,
        schema=KlingImageToVideo if image else KlingTextToVideo,
        price=PerClip(Decimal("0.10")),
        sizes={("", "16:9"): (640, 360), ("", "9:16"): (360, 640), ("", "1:1"): (480, 480)},
        source_url="https://example.com/my-model",
        read_on="2026-12-01",
        image_field="image_url" if image else None,
    )


def test_a_model_registered_in_code_is_a_model_like_any_other():
    mine = register_model(Model("my-kling", "My Kling proxy", "test", t2v=_endpoint("team/my-kling/text-to-video")))
    assert get_model("my-kling") is mine and "my-kling" in model_names()
    sweep = Sweep.grid("x", prompt="a", model=["kling-2.0-master", "my-kling"])
    assert sweep.total_usd() == pytest.approx(1.50)
    assert model_for_endpoint("team/my-kling/text-to-video") is mine


def test_threads_looking_up_a_model_first_at_once_all_find_it():
    """The emulator's thread and a notebook's may load the registry at the same moment (a fresh process)."""
    import subprocess
    import sys

    code = (
        "import threading, kling_lab.models as m\n"
        "barrier, errors = threading.Barrier(8), []\n"
        "def look():\n"
        "    barrier.wait()\n"
        "    try: m.get_model('kling-2.0-master')\n"
        "    except Exception as e: errors.append(e)\n"
        "ts = [threading.Thread(target=look) for _ in range(8)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(len(errors))\n"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "0"
    )
