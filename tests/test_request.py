"""KlingRequest: validation with one-line errors, price rule, fingerprint. Pure, no fixtures."""

import math

import pytest

from kling_lab.errors import InvalidRequest
from kling_lab.request import DEFAULT_NEGATIVE_PROMPT, ENDPOINT, KlingRequest, price_usd


def test_defaults_match_fal_schema():
    r = KlingRequest.parse({"prompt": "a fox"})
    assert r.arguments() == {
        "prompt": "a fox",
        "duration": "5",
        "aspect_ratio": "16:9",
        "negative_prompt": DEFAULT_NEGATIVE_PROMPT,
        "cfg_scale": 0.5,
    }
    assert ENDPOINT == "fal-ai/kling-video/v2/master/text-to-video"


@pytest.mark.parametrize("duration,usd", [("5", 1.40), ("10", 2.80), (5, 1.40), (10, 2.80)])
def test_price_rule(duration, usd):
    assert KlingRequest.parse({"prompt": "x", "duration": duration}).cost_usd() == pytest.approx(usd)


def test_price_per_extra_second():
    assert price_usd(6) == pytest.approx(1.68)
    assert price_usd(10) == pytest.approx(2.80)


def test_int_duration_is_canonical_string():
    assert KlingRequest.parse({"prompt": "x", "duration": 10}).duration == "10"


@pytest.mark.parametrize(
    "change,field,needle",
    [
        ({"cfg_scale": 1.5}, "cfg_scale", "between 0 and 1"),
        ({"cfg_scale": -0.1}, "cfg_scale", "between 0 and 1"),
        ({"cfg_scale": math.nan}, "cfg_scale", "finite"),
        ({"cfg_scale": math.inf}, "cfg_scale", "finite"),
        ({"cfg_scale": "0.5"}, "cfg_scale", "number"),
        ({"duration": "7"}, "duration", '"5", "10"'),
        ({"duration": 7}, "duration", '"5", "10"'),
        ({"aspect_ratio": "4:3"}, "aspect_ratio", '"16:9", "9:16", "1:1"'),
        ({"prompt": ""}, "prompt", "non-empty"),
        ({"prompt": "   "}, "prompt", "non-empty"),
        ({"prompt": "x" * 2501}, "prompt", "2500"),
        ({"negative_prompt": "x" * 2501}, "negative_prompt", "2500"),
        ({"seed": 3}, "seed", "allowed inputs"),
    ],
)
def test_bad_input_one_line_error_naming_field(change, field, needle):
    with pytest.raises(InvalidRequest) as info:
        KlingRequest.parse({"prompt": "a fox", **change})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(field) or repr(field) in message
    assert needle in message
    assert info.value.field == field


def test_prompt_of_exactly_2500_chars_is_fine():
    assert len(KlingRequest.parse({"prompt": "y" * 2500}).prompt) == 2500


def test_missing_prompt():
    with pytest.raises(InvalidRequest, match="prompt: required"):
        KlingRequest.parse({})


def test_fingerprint_stable_and_sensitive():
    a = KlingRequest.parse({"prompt": "a fox", "cfg_scale": 0.5})
    b = KlingRequest.parse({"cfg_scale": 0.5, "prompt": "a fox"})
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() == a.fingerprint(0)
    assert a.fingerprint(1) != a.fingerprint(0)
    assert KlingRequest.parse({"prompt": "a fox", "cfg_scale": 0.51}).fingerprint() != a.fingerprint()
    assert KlingRequest.parse({"prompt": "a fox", "duration": 5}).fingerprint() == a.fingerprint()


def test_fingerprint_is_known_value():
    # Guards against accidental changes of the canonical form: a changed fingerprint
    # would silently defeat the cache and re-spend money.
    r = KlingRequest.parse({"prompt": "a fox"})
    assert r.fingerprint() == "b2faf3af5810da8419a929b014d236ba"


def test_output_sizes_are_720p():
    assert KlingRequest.parse({"prompt": "x", "aspect_ratio": "9:16"}).output_size == (720, 1280)
    assert KlingRequest.parse({"prompt": "x", "aspect_ratio": "1:1"}).output_size == (720, 720)
