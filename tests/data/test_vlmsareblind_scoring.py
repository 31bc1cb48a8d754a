"""VLMsAreBlind's per-task rule (VLMEvalKit's VLMBlind.evaluate) on tasks from the published parquet and from
VLMEvalKit's VLMBlind.tsv (ground truth in `answers`, task in `task`)."""

from __future__ import annotations

import base64
import csv
from pathlib import Path

import pytest

from data.loaders import LoaderError, load_benchmark
from rewards.answers import match_answer
from rewards.vlmsareblind_scoring import braced, vlmsareblind_correct
from tests.data.bench_fixtures import png

FIX = Path(__file__).parent / "fixtures"


def test_vlmsareblind_parquet_tasks_use_the_published_rule(tmp_path: Path) -> None:
    lines, circles, letter = load_benchmark("vlmsareblind", FIX / "vlmsareblind", image_dir=tmp_path / "img")
    assert lines.metadata["scoring"] == "vlmsareblind" and lines.metadata["answer_text"] == "2"
    assert match_answer("{2}", lines).correct and match_answer("2", lines).correct  # our answer tag = the braces
    assert not match_answer("{2.0}", lines).correct  # bracket content compared exactly, as published
    assert match_answer("Yes, they touch", circles).correct and not match_answer("No", circles).correct
    assert match_answer("The circled letter is {o}", letter).correct and not match_answer("{O}", letter).correct


def test_vlmsareblind_rules_hand_checked() -> None:
    assert braced("I count {4} and then {5}") == "4" and braced("4") == "4" and braced("{ }") == " "
    grid = "Counting Grid - Word Grids"
    assert vlmsareblind_correct("Rows: {3}, Columns: {4}", grid, "3,4")
    assert vlmsareblind_correct("the grid is (3, 4)", grid, "3,4") and vlmsareblind_correct("3, 4", grid, "3,4")
    assert not vlmsareblind_correct("Rows: {4}, Columns: {3}", grid, "3,4")
    # Olympic counting is a substring test as published: "15" contains "5"
    assert vlmsareblind_correct("{15}", "Olympic Counting - Circles", "5")


def test_vlmevalkit_vlmblind_tsv_columns(tmp_path: Path) -> None:
    tsv = tmp_path / "VLMBlind.tsv"
    with tsv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["index", "image", "question", "answers", "task"])
        w.writerow(["0", base64.b64encode(png((5, 5, 5))).decode(), "How many rows and columns?", "3,4",
                    "Counting Grid - Blank Grids"])
    (t,) = load_benchmark("vlmevalkit", tsv, image_dir=tmp_path / "img")
    assert t.metadata["task"] == "Counting Grid - Blank Grids" and t.answer == "3,4"
    assert match_answer("Rows {3} Columns {4}", t).correct and not match_answer("(4, 3)", t).correct
    bad = tmp_path / "VLMBlind_x.tsv"
    bad.write_text("index\timage\tquestion\ttask\n0\t" + base64.b64encode(png((5, 5, 5))).decode() + "\tq\tt\n")
    with pytest.raises(LoaderError, match=r"VLMBlind_x.tsv: missing column answers"):
        load_benchmark("vlmevalkit", bad, image_dir=tmp_path / "img")
