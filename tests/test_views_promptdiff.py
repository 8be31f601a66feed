"""Word-level prompt diffs against the most common prompt."""

from kling_lab.views.promptdiff import base_prompt, diff, diffs, words


def test_words_keep_whitespace():
    assert words("a  red fox\n") == ["a  ", "red ", "fox\n"]


def test_base_is_the_most_common_prompt():
    assert base_prompt(["b", "a", "a", None]) == "a"
    assert base_prompt(["x", "y"]) == "x"  # a tie goes to the first seen
    assert base_prompt([None]) == ""


def test_diff_marks_added_and_removed_words_and_rebuilds_the_prompt():
    segments = diff("a red fox in snow", "a grey fox in deep snow")
    assert ["-", "red "] in segments and ["+", "grey "] in segments and ["+", "deep "] in segments
    assert "".join(text for op, text in segments if op != "-") == "a grey fox in deep snow"
    assert "".join(text for op, text in segments if op != "+") == "a red fox in snow"


def test_identical_prompts_have_no_changes():
    base, all_diffs = diffs(["same words", "same words"])
    assert base == "same words" and all_diffs == [[["=", "same words"]], [["=", "same words"]]]


def test_user_text_is_kept_verbatim():
    segments = diff("", '<script>alert("x")</script> & more')
    assert segments == [["+", '<script>alert("x")</script> & more']]
