"""Secrets never travel as notebook parameters, and a written notebook is searched for them."""

import json
import secrets
import uuid

import pytest

from kling_lab.errors import InvalidInput
from kling_lab.notebooks.leaks import REDACTED, check_parameters, scrub_secrets, secret_values

# A fal-key-shaped value (uuid:32 hex), made at run time so no key-like literal is committed.
KEY = f"{uuid.uuid4()}:{secrets.token_hex(16)}"


@pytest.fixture
def fal_key(monkeypatch):
    monkeypatch.setenv("FAL_KEY", KEY)
    return KEY


@pytest.mark.parametrize("name", ["fal_key", "FAL_KEY", "api_token", "my_secret", "db_password", "credentials"])
def test_secret_looking_names_are_refused(name):
    with pytest.raises(InvalidInput, match="papermill writes parameters"):
        check_parameters({name: "x"})


@pytest.mark.parametrize("value", [KEY, [0.5, KEY], {"nested": {"deeper": f"Key {KEY}"}}])
def test_the_key_itself_is_refused_anywhere_in_a_value(fal_key, value):
    with pytest.raises(InvalidInput, match=r"\$FAL_KEY"):
        check_parameters({"prompt": value})


def test_a_fal_key_shape_is_refused_even_when_not_in_the_environment(monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    with pytest.raises(InvalidInput, match="shaped like a fal key"):
        check_parameters({"note": KEY})


def test_ordinary_parameters_pass(fal_key):
    check_parameters({"prompt": "A red fox", "cfg_values": [0.1, 0.9], "store": None, "budget_usd": 2.5})


def test_secret_values_cover_key_pairs_and_skip_short_values(monkeypatch):
    monkeypatch.setenv("FAL_KEY_ID", "id-1234567")
    monkeypatch.setenv("FAL_KEY_SECRET", "s3cr3t-value")
    monkeypatch.setenv("SOME_TOKEN", "1")
    found = secret_values()
    assert found["FAL_KEY_ID:FAL_KEY_SECRET"] == "id-1234567:s3cr3t-value"
    assert found["FAL_KEY_SECRET"] == "s3cr3t-value"
    assert "SOME_TOKEN" not in found


def test_scrub_redacts_raw_and_json_escaped_forms(monkeypatch, tmp_path):
    secret = 'quote"and\\slash-0123456789'
    monkeypatch.setenv("MY_API_KEY", secret)
    path = tmp_path / "out.ipynb"
    path.write_text(json.dumps({"text": f"leaked {secret}"}) + f"\nraw {secret}\n")
    assert scrub_secrets(path) == ["MY_API_KEY"]
    text = path.read_text()
    assert secret not in text and json.dumps(secret)[1:-1] not in text
    assert text.count(REDACTED) == 2
    assert scrub_secrets(path) == []  # nothing left


def test_the_length_floor_and_the_key_pair_are_exact(monkeypatch):
    from kling_lab.notebooks.leaks import MIN_SECRET_LEN, secret_values

    assert MIN_SECRET_LEN == 8
    monkeypatch.setenv("EIGHT_TOKEN", "abcdefgh")
    monkeypatch.setenv("SEVEN_TOKEN", "abcdefg")
    monkeypatch.setenv("FAL_KEY_ID", "only-the-id-is-set")
    monkeypatch.delenv("FAL_KEY_SECRET", raising=False)
    found = secret_values()
    assert found["EIGHT_TOKEN"] == "abcdefgh" and "SEVEN_TOKEN" not in found
    assert "FAL_KEY_ID:FAL_KEY_SECRET" not in found, "the pair needs both halves"


def test_the_message_names_the_first_variable_that_leaked(monkeypatch):
    from kling_lab.errors import InvalidInput
    from kling_lab.notebooks.leaks import check_parameters

    shared = "shared-secret-value-1234"
    monkeypatch.setenv("A_FIRST_TOKEN", shared)
    monkeypatch.setenv("B_SECOND_TOKEN", shared)
    with pytest.raises(InvalidInput, match=r"holds the value of \$A_FIRST_TOKEN;"):
        check_parameters({"prompt": f"a cat {shared}"})


def test_only_the_whole_secret_is_redacted(monkeypatch, tmp_path):
    from kling_lab.notebooks.leaks import scrub_secrets

    secret = "wholesecretvalue42"
    monkeypatch.setenv("MY_TOKEN", secret)
    page = tmp_path / "nb.ipynb"
    text = f'{{"a": "x{secret[1:]}", "b": "{secret[:-1]}y"}}'  # fragments, never the whole value
    page.write_text(text)
    assert scrub_secrets(page) == [] and page.read_text() == text
