"""Answer extraction and matching: every answer type, with adversarial formats."""

from __future__ import annotations

import pytest

from rewards.answers import (
    AnswerMatchParams,
    clean_answer,
    extract_answer,
    match_answer,
    normalize_text,
    parse_box,
    parse_choice,
    parse_number,
)
from tests.rewards.builders import task


@pytest.mark.parametrize(("text", "expected"), [
    ("I think <answer>\\boxed{B}</answer>", "B"),
    ("<answer> 42 </answer> trailing", "42"),
    ("<answer>first</answer><answer>second</answer>", "first"),
    ("no tags but \\boxed{1} then \\boxed{\\frac{3}{4}}", "\\frac{3}{4}"),  # last boxed without answer tags
    ("<answer>unclosed", "unclosed"),
    ("<answer></answer>", None),
    ("nothing here", None),
    ("\\boxed{a{b}c}", "a{b}c"),  # balanced braces
])
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_clean_and_normalise() -> None:
    assert clean_answer("<answer>\\boxed{\\text{red}}</answer>") == "red"
    assert clean_answer("$12$") == "12"
    assert normalize_text("The  Red, SQUARE!") == "red square"
    assert normalize_text("an apple") == "apple"


@pytest.mark.parametrize(("text", "value"), [
    ("12", 12.0), ("1,234 apples", 1234.0), ("\\frac{3}{4}", 0.75), ("3/4", 0.75), ("50%", 50.0),
    ("x = 3, y = \u22125", -5.0), ("about 2.5e3", 2500.0), ("none", None),
    ("1/0", 0.0),  # not a valid fraction: the last number in the text
])
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(("text", "letter"), [
    ("B", "B"), ("(b)", "B"), ("B.", "B"), ("B) dog", "B"), ("C: bird", "C"), ("Option D", "D"),
    ("The answer is A", "A"), ("dog", "B"),
    ("A dog", "B"), ("a cat", "A"),  # an article-led answer reads as the option's text ("a dog" -> dog -> B)
    ("A fox", None), ("E", None), ("", None), ("maybe", None),
])
def test_parse_choice(text: str, letter: str | None) -> None:
    assert parse_choice(text, ["cat", "dog", "bird", "fish"]) == letter


def test_parse_box() -> None:
    assert parse_box("[10, 20, 30, 40]") == (10, 20, 30, 40)
    assert parse_box("(10,20,30)") is None
    assert parse_box("[30, 20, 10, 40]") is None  # degenerate


def test_match_each_type() -> None:
    choice = task("B")
    assert match_answer("(B) dog", choice).correct and match_answer("dog", choice).correct
    assert not match_answer("A", choice).correct
    assert match_answer(None, choice).method == "no_answer"
    num = task(12, "number")
    assert match_answer("12.0", num).correct and match_answer("There are 12.", num).correct
    # rel_tol 1e-3: |12.01 - 12| = 0.01 <= 0.012 ok; 12.02 -> 0.02 > 0.012 wrong
    assert match_answer("12.01", num).correct and not match_answer("12.02", num).correct
    assert match_answer("12.02", num, AnswerMatchParams(rel_tol=0.01)).correct
    text = task("Red square", "text")
    assert match_answer("red square.", text).correct and not match_answer("a red square here", text).correct
    assert match_answer("a red square here", text, AnswerMatchParams(text_match="contains")).correct
    assert match_answer("1,000", task("1000", "text")).correct  # numbers in text compare as numbers
    box = task([0, 0, 10, 10], "box")
    # prediction (5, 0, 15, 10): inter 50, union 150 -> IoU 1/3
    m = match_answer("[5, 0, 15, 10]", box)
    assert (m.score, m.correct) == (0.0, False)
    m = match_answer("[5, 0, 15, 10]", box, AnswerMatchParams(box_score="iou", box_iou_threshold=0.3))
    assert m.score == pytest.approx(1 / 3) and m.correct
    assert match_answer("[0, 0, 10, 10]", box).score == 1.0


def test_benchmark_rules_in_task_metadata() -> None:
    """OCRBench's loader writes alternatives, `contains` matching and (HME100k) space-insensitive comparison."""
    ocr = task("Emerald", "text", metadata={"answers": ["Emerald", "Emerald Isle"], "match": "contains"})
    m = match_answer("The sign says EMERALD ISLE.", ocr)
    assert m.correct and m.method == "text_contains_any"
    assert not match_answer("emeralds", ocr).correct  # whole words, not a raw substring
    assert not match_answer("Emerald", task("Ruby", "text", metadata={"answers": ["Garnet"]})).correct
    assert match_answer("garnet", task("Ruby", "text", metadata={"answers": ["Garnet"]})).method == "text_exact_any"
    hme = task("x ^ { 2 } + 1", "text", metadata={"answers": ["x ^ { 2 } + 1"], "match": "contains", "ignore_spaces": True})
    assert match_answer("the formula is x^{2}+1", hme).correct
    assert not match_answer("x^{2}-1", hme).correct  # punctuation is content in formulas
    with pytest.raises(ValueError, match="metadata\\['match'\\] must be"):
        match_answer("x", task("x", "text", metadata={"match": "fuzzy"}))


def test_an_answer_that_is_only_an_article_still_matches() -> None:
    """Normalisation drops articles, but a glyph answer "A" (or "the") must not become empty and score 0."""
    glyph = task("A", "text")
    assert match_answer("A", glyph).correct and match_answer("a.", glyph).correct
    assert not match_answer("B", glyph).correct
    assert match_answer("the", task("The", "text")).correct
    assert match_answer("a red square", task("red square", "text")).correct  # articles still dropped elsewhere
