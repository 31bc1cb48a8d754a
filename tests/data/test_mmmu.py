"""MMMU as published (MMMU/MMMU: one folder per subject, `<split>-00000-of-00001.parquet`, options as a Python list
written as a string, image_1..image_7 as {bytes, path} structs) and its official rule-based scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from data.loaders import LoaderError, load_benchmark
from rewards.answers import match_answer
from rewards.mmmu_scoring import open_correct, parse_multi_choice, parse_open
from tests.data.bench_fixtures import image_struct, image_type, png, write_parquet


def _schema() -> Any:
    import pyarrow as pa

    fields = [pa.field(c, pa.string()) for c in ("id", "question", "options", "explanation")]
    fields += [pa.field(f"image_{k}", image_type()) for k in range(1, 8)]
    fields += [pa.field(c, pa.string()) for c in ("img_type", "answer", "topic_difficulty", "question_type",
                                                  "subfield")]
    return pa.schema(fields)


def _row(item_id: str, question: str, options: str, answer: str, qtype: str, images: dict[int, bytes]) -> dict:
    row: dict[str, Any] = {"id": item_id, "question": question, "options": options, "explanation": "",
                           "img_type": "['Tables']", "answer": answer, "topic_difficulty": "Medium",
                           "question_type": qtype, "subfield": "Financial Accounting"}
    for k in range(1, 8):
        row[f"image_{k}"] = image_struct(images.get(k), f"{item_id}_{k}.png")
    return row


def _mmmu(root: Path) -> Path:
    red, green, blue = png((200, 0, 0)), png((0, 200, 0)), png((0, 0, 200), (24, 24))
    write_parquet(root / "Accounting" / "validation-00000-of-00001.parquet", [
        _row("validation_Accounting_1", "<image 1> Which is the net income?", "['$6', '$7', '$8', '$9']", "B",
             "multiple-choice", {1: red}),
        _row("validation_Accounting_2", "Compare <image 1> and <image 2>. Which option shows <image 3>?",
             "['<image 3>', 'neither', 'both']", "A", "multiple-choice", {1: red, 2: green, 3: blue}),
    ], _schema())
    write_parquet(root / "Math" / "validation-00000-of-00001.parquet", [
        _row("validation_Math_15", "<image 1> What is x?", "[]", "['24/7', '3.429']", "open", {1: green}),
        _row("validation_Math_16", "<image 1> How long is the side?", "[]", "30", "open", {1: blue}),
    ], _schema())
    write_parquet(root / "Math" / "test-00000-of-00001.parquet", [
        _row("test_Math_1", "<image 1> Hidden?", "['a', 'b']", "?", "multiple-choice", {1: blue}),
    ], _schema())
    write_parquet(root / "Math" / "dev-00000-of-00001.parquet", [
        _row("dev_Math_1", "<image 1> Dev?", "['a', 'b']", "A", "multiple-choice", {1: blue}),
    ], _schema())
    return root


def test_mmmu_subject_folders_options_images_and_answers(tmp_path: Path) -> None:
    root = _mmmu(tmp_path / "MMMU")
    tasks = {t.id: t for t in load_benchmark("mmmu", root, image_dir=tmp_path / "img")}
    assert sorted(tasks) == ["mmmu-validation_Accounting_1", "mmmu-validation_Accounting_2",
                             "mmmu-validation_Math_15", "mmmu-validation_Math_16"]  # validation only (the default)
    mc = tasks["mmmu-validation_Accounting_1"]
    assert mc.answer == "B" and mc.answer_type == "choice" and mc.choices == ["$6", "$7", "$8", "$9"]
    assert mc.question.startswith("<image 1> Which is the net income?\n(A) $6\n(B) $7")
    assert mc.metadata["subject"] == "Accounting" and mc.metadata["category"] == "Accounting"
    multi = tasks["mmmu-validation_Accounting_2"]
    assert len(multi.images) == 3 and multi.metadata["image_numbers"] == [1, 2, 3]
    assert [Image.open(p).size for p in multi.images] == [(40, 30), (40, 30), (24, 24)]  # image_3 is the 24x24 one
    assert multi.images[0] == mc.images[0]  # the same bytes are written once
    assert multi.choices == ["<image 3>", "neither", "both"]
    listed = tasks["mmmu-validation_Math_15"]
    assert listed.answer_type == "text" and listed.answer == "24/7"
    assert listed.metadata["mmmu_answer"] == ["24/7", "3.429"]  # the string-encoded list of acceptable answers
    dev = load_benchmark("mmmu", root, image_dir=tmp_path / "img", split="dev")
    assert [t.id for t in dev] == ["mmmu-dev_Math_1"] and dev[0].split == "dev"
    assert load_benchmark("mmmu", root, image_dir=tmp_path / "img", split="test") == []  # "?" answers are hidden
    only_math = load_benchmark("mmmu", root, image_dir=tmp_path / "img", subjects="Math")
    assert [t.metadata["subject"] for t in only_math] == ["Math", "Math"]


def test_mmmu_scoring_as_published(tmp_path: Path) -> None:
    tasks = {t.id: t for t in load_benchmark("mmmu", _mmmu(tmp_path / "MMMU"), image_dir=tmp_path / "img")}
    mc, listed, side = (tasks["mmmu-validation_Accounting_1"], tasks["mmmu-validation_Math_15"],
                        tasks["mmmu-validation_Math_16"])
    assert match_answer("B", mc).correct and match_answer("(B) $7", mc).correct
    # "(A)" and "(B)" both appear: the one written last counts
    assert match_answer("Not (A) but (B)", mc).correct and not match_answer("(B) is wrong, so (A)", mc).correct
    # no letter: a response of more than 5 words naming an option's text picks it ("$7")
    assert match_answer("I think the net income equals $7 here", mc).correct
    # open: 3.429 matches the second acceptable answer; 3.43 rounds to the same 2-place float (3.429 -> 3.43)
    assert match_answer("so x is 3.43", listed).correct and not match_answer("x is 3.5", listed).correct
    assert match_answer("The side is 30 cm.", side).correct and match_answer("30.0", side).correct
    assert not match_answer("The side is 300", side).correct


def test_mmmu_parsers_hand_checked() -> None:
    letters, options = ["A", "B", "C", "D"], ["red", "blue", "green", "black"]
    assert parse_multi_choice("The answer is C.", letters, options) == "C"  # " C " after stripping "." and padding
    assert parse_multi_choice("(D)", letters, options) == "D"
    # a guess without any candidate is seeded by the item: the same item always gets the same guess
    guess = parse_multi_choice("no idea", letters, options, seed="validation_Art_1")
    assert guess in letters and guess == parse_multi_choice("no idea", letters, options, seed="validation_Art_1")
    # open answers: the tail after the last indicator, its numbers, normalised (1,000 -> 1000.0)
    assert 1000.0 in parse_open("Therefore the total is 1,000 dollars")
    assert open_correct(parse_open("the answer is Paris"), "paris")
    assert not open_correct(parse_open("the answer is a"), "b")  # one-letter text is matched as a word only


def test_mmmu_bad_input_names_file_row_and_field(tmp_path: Path) -> None:
    bad = write_parquet(tmp_path / "validation-00000-of-00001.parquet", [
        _row("validation_Art_1", "q", "['a', 'b'", "A", "multiple-choice", {1: png((1, 2, 3))})], _schema())
    with pytest.raises(LoaderError, match=r"validation-00000-of-00001.parquet: row 0 \(id validation_Art_1\): field "
                                          r"options .* not a Python list"):
        load_benchmark("mmmu", bad, image_dir=tmp_path / "img")
    no_image = write_parquet(tmp_path / "b" / "validation-00000-of-00001.parquet", [
        _row("validation_Art_2", "q", "['a', 'b']", "A", "multiple-choice", {})], _schema())
    with pytest.raises(LoaderError, match=r"row 0 \(id validation_Art_2\): no image"):
        load_benchmark("mmmu", no_image, image_dir=tmp_path / "img")
    letter = write_parquet(tmp_path / "c" / "validation-00000-of-00001.parquet", [
        _row("validation_Art_3", "q", "['a', 'b']", "E", "multiple-choice", {1: png((1, 2, 3))})], _schema())
    with pytest.raises(LoaderError, match=r"field answer 'E' is not a letter among the 2 options"):
        load_benchmark("mmmu", letter, image_dir=tmp_path / "img")
    import pyarrow as pa

    missing = write_parquet(tmp_path / "d" / "validation-0.parquet", [{"id": "x", "question": "q"}],
                            pa.schema([pa.field("id", pa.string()), pa.field("question", pa.string())]))
    with pytest.raises(LoaderError, match=r"validation-0.parquet: missing column\(s\) options, answer, question_type"):
        load_benchmark("mmmu", missing, image_dir=tmp_path / "img")
    with pytest.raises(LoaderError, match="no validation-\\*.parquet under"):
        load_benchmark("mmmu", tmp_path / "img")
