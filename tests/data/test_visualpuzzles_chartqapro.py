"""VisualPuzzles (data.parquet) and ChartQAPro (data/test-*.parquet; VLMEvalKit's chartqapro.tsv) as published,
ChartQAPro-T (the transformed copies), and both benchmarks' rule-based scoring."""

from __future__ import annotations

import base64
import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from data.loaders import LoaderError, load_benchmark
from rewards.answers import match_answer
from rewards.chartqapro_scoring import anls, chartqapro_score
from rewards.visualpuzzles_scoring import parse_visualpuzzles
from tests.data.bench_fixtures import image_struct, image_type, png, write_parquet


def _puzzles_schema() -> Any:
    import pyarrow as pa

    return pa.schema([pa.field("id", pa.int64()), pa.field("category", pa.string()), pa.field("image", image_type()),
                      pa.field("question", pa.string()), pa.field("options", pa.list_(pa.string())),
                      pa.field("answer", pa.string())])


def _puzzles(root: Path) -> Path:
    return write_parquet(root / "data.parquet", [
        {"id": 3, "category": "spatial", "image": image_struct(png((1, 2, 3))),
         "question": "What is the maximum number of pieces of cheese that he can eat?",
         "options": ["32", "35", "37", "40"], "answer": "C"},
        {"id": 1, "category": "inductive", "image": image_struct(png((4, 5, 6))),
         "question": "Divide the following six figures into two categories.", "options": None, "answer": "D"},
    ], _puzzles_schema())


def test_visualpuzzles_as_published(tmp_path: Path) -> None:
    _puzzles(tmp_path / "VisualPuzzles")
    a, b = load_benchmark("visualpuzzles", tmp_path / "VisualPuzzles", image_dir=tmp_path / "img")
    assert (a.id, a.answer, a.choices, a.metadata["category"]) == ("visualpuzzles-3", "C", ["32", "35", "37", "40"],
                                                                  "spatial")
    assert a.question == ("Question: What is the maximum number of pieces of cheese that he can eat?\nOptions:\n"
                          "(A) 32\n(B) 35\n(C) 37\n(D) 40\nAnswer the question with the option's letter from the "
                          "given choices directly.")
    assert b.choices is None and "Options: Choose from (A) (B) (C) (D) in the image." in b.question
    cot = load_benchmark("visualpuzzles", tmp_path / "VisualPuzzles", image_dir=tmp_path / "img", prompt="cot")
    assert cot[0].question.endswith("Think step by step before answering.")
    # scoring: "Answer: X" wins over earlier letters; an option's text names it; letters are case-insensitive
    assert match_answer("(A) looks close but Answer: C", a).correct
    assert match_answer("37", a).correct and match_answer("c", a).correct and not match_answer("Answer: B", a).correct
    assert match_answer("Answer: (D)", b).correct


def test_visualpuzzles_parser_and_errors(tmp_path: Path) -> None:
    assert parse_visualpuzzles("Final Answer: B\nAnswer: C", None) == "C"
    assert parse_visualpuzzles("I pick {B}", None) == "B" and parse_visualpuzzles("$D$", None) == "D"
    guess = parse_visualpuzzles("no idea at all", None, seed="7")
    assert guess in "ABCD" and guess == parse_visualpuzzles("no idea at all", None, seed="7")  # seeded per item
    f = write_parquet(tmp_path / "data.parquet", [
        {"id": 9, "category": "spatial", "image": image_struct(png((1, 2, 3))), "question": "q",
         "options": ["1", "2", "3", "4"], "answer": "E"}], _puzzles_schema())
    with pytest.raises(LoaderError, match=r"data.parquet: row 0 \(id 9\): field answer 'E' is not one of A, B, C, D"):
        load_benchmark("visualpuzzles", f, image_dir=tmp_path / "img")
    g = write_parquet(tmp_path / "g" / "data.parquet", [
        {"id": 10, "category": "spatial", "image": None, "question": "q", "options": None, "answer": "A"}],
        _puzzles_schema())
    with pytest.raises(LoaderError, match=r"row 0 \(id 10\): field image is empty"):
        load_benchmark("visualpuzzles", g, image_dir=tmp_path / "img")


def test_visualpuzzles_vlmevalkit_tsv(tmp_path: Path) -> None:
    tsv = tmp_path / "VisualPuzzles.tsv"
    img = base64.b64encode(png((7, 7, 7))).decode()
    with tsv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["index", "image", "question", "options", "answer", "category"])
        w.writerow(["3", img, "How much cheese?", "['32', '35', '37', '40']", "C", "spatial"])
        w.writerow(["1", "3", "Divide the figures.", "", "D", "inductive"])  # image shared with row 3; no options
    a, b = load_benchmark("visualpuzzles", tsv, image_dir=tmp_path / "img")
    assert (a.id, a.choices, b.choices, b.answer) == ("visualpuzzles-3", ["32", "35", "37", "40"], None, "D")
    assert a.images == b.images and a.metadata["category"] == "spatial" and match_answer("37", a).correct


def _chartqapro_rows() -> list[dict[str, Any]]:
    chart = png((200, 40, 40), (60, 40))
    return [
        {"Question": ["What was the revenue in 2016?"], "Answer": ["12.5"], "Question Type": "Factoid",
         "image": chart, "Year": ["NO"], "Paragraph": ""},
        {"Question": ["Which year had the highest sales?", "And the lowest?"], "Answer": ["2019", "2016"],
         "Question Type": "Conversational", "image": chart, "Year": ["YES", "YES"], "Paragraph": "Sales by year."},
        {"Question": ["Which countries are above 50%?"], "Answer": ["['France', 'Spain']"], "Question Type": "Factoid",
         "image": png((10, 90, 10)), "Year": ["NO"], "Paragraph": ""},
        {"Question": ["Which is larger? a) 10 b) 20 c) 30 d) 40"], "Answer": ["b"], "Question Type": "Multi Choice",
         "image": chart, "Year": ["NO"], "Paragraph": ""},
    ]


def _chartqapro_schema() -> Any:
    import pyarrow as pa

    lst = pa.list_(pa.string())
    return pa.schema([pa.field("Question", lst), pa.field("Answer", lst), pa.field("Question Type", pa.string()),
                      pa.field("image", pa.binary()), pa.field("Year", lst), pa.field("Paragraph", pa.string())])


def test_chartqapro_as_published_and_its_scoring(tmp_path: Path) -> None:
    write_parquet(tmp_path / "ChartQAPro/data/test-00000-of-00001.parquet", _chartqapro_rows(), _chartqapro_schema())
    tasks = load_benchmark("chartqapro", tmp_path / "ChartQAPro", image_dir=tmp_path / "img")
    factoid, conv, listed, mc = tasks
    assert [t.id for t in tasks] == ["chartqapro-0", "chartqapro-1", "chartqapro-2", "chartqapro-3"]
    assert factoid.answer == "12.5" and factoid.metadata["category"] == "Factoid"
    assert factoid.images[0] == conv.images[0]  # one chart, one file
    assert conv.question.startswith("Sales by year.\n\nConversation so far:\nQ: Which year had the highest sales?\n"
                                    "A: 2019\n\nQuestion: And the lowest?")
    assert conv.answer == "2016"  # the last answer is the one scored
    # numbers within 5%: |12.9 - 12.5| / 12.5 = 0.032 <= 0.05; 13.2 is 0.056 off
    assert match_answer("12.9", factoid).correct and not match_answer("13.2", factoid).correct
    # years are exact (the last flag of a conversation): 2016 yes, 2017 no (though within 5%)
    assert match_answer("2016", conv).correct and not match_answer("2017", conv).correct
    # lists are scored per position: one of two right -> 0.5
    half = match_answer("['France', 'Italy']", listed)
    assert half.score == 0.5 and not half.correct and match_answer("['France', 'Spain']", listed).correct
    assert match_answer("b", mc).correct and match_answer("B.", mc).correct  # ANLS lower-cases; "." is stripped


def test_chartqapro_rules_hand_checked() -> None:
    # ANLS: "emerald" vs "emerlad": distance 2 of 7 -> 1 - 2/7 = 0.714...; "abc" vs "xyz": 1.0 >= 0.5 -> 0
    assert anls("emerlad", "Emerald") == pytest.approx(1 - 2 / 7) and anls("abc", "xyz") == 0.0
    assert chartqapro_score("0", ["0"], "Factoid", ["NO"]) == 1.0 and chartqapro_score("0.1", ["0"], "Factoid",
                                                                                        ["NO"]) == 0.0
    assert chartqapro_score("45%", ["45"], "Factoid", ["NO"]) == 1.0  # a trailing % is ignored
    # an unquoted list in the gold is quoted before parsing: [a, b] -> ['a', 'b']
    assert chartqapro_score("['a', 'b']", ["[a, b]"], "Factoid", ["NO"]) == 1.0
    assert chartqapro_score("['a']", ["['a', 'b']"], "Factoid", ["NO"]) == 0.5  # a missing element scores 0


def test_chartqapro_t_and_the_vlmevalkit_tsv(tmp_path: Path) -> None:
    write_parquet(tmp_path / "ChartQAPro/data/test-00000-of-00001.parquet", _chartqapro_rows(), _chartqapro_schema())
    variants = load_benchmark("chartqapro", tmp_path / "ChartQAPro", image_dir=tmp_path / "t", transforms="all",
                              limit=1)
    assert [t.id for t in variants] == ["chartqapro-0", "chartqapro-0-rotate90", "chartqapro-0-rotate180",
                                        "chartqapro-0-rotate270", "chartqapro-0-flip_h", "chartqapro-0-flip_v"]
    assert variants[1].required_ops == ["rotate270"] and Image.open(variants[1].images[0]).size == (40, 60)
    assert all(v.metadata["scoring"] == "chartqapro" and v.answer == "12.5" for v in variants)
    # VLMEvalKit's chartqapro.tsv: lists written as Python lists, images as base64, lower-case column names
    tsv = tmp_path / "chartqapro.tsv"
    with tsv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["index", "image", "question", "answer", "question_type", "year", "paragraph"])
        w.writerow(["0", base64.b64encode(png((1, 1, 1))).decode(), "['What is the max?']", "['7']", "Factoid",
                    "['NO']", ""])
    (t,) = load_benchmark("chartqapro", tsv, image_dir=tmp_path / "img")
    assert t.id == "chartqapro-0" and t.answer == "7" and np.asarray(Image.open(t.images[0])).shape == (30, 40, 3)
    no_flags = _chartqapro_rows()[:1]
    no_flags[0]["Year"] = []  # no year flags: the answer is compared as a number (12.6 within 5% of 12.5)
    write_parquet(tmp_path / "noflags.parquet", no_flags, _chartqapro_schema())
    (nf,) = load_benchmark("chartqapro", tmp_path / "noflags.parquet", image_dir=tmp_path / "img")
    assert nf.metadata["year"] == [] and match_answer("12.6", nf).correct
    bad = _chartqapro_rows()[:1]
    bad[0]["Question Type"] = "Riddle"
    write_parquet(tmp_path / "bad.parquet", bad, _chartqapro_schema())
    with pytest.raises(LoaderError, match=r"bad.parquet: row 0: field Question Type is 'Riddle'; expected one of"):
        load_benchmark("chartqapro", tmp_path / "bad.parquet", image_dir=tmp_path / "img")
