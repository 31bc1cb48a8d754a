"""MathVerse (testmini.json + images/, or testmini.parquet) and MATH-Vision (data/<split>.jsonl + images/, or the
HF parquet with decoded_image) as published, with their rule-based scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.loaders import LoaderError, load_benchmark
from rewards.answers import match_answer
from rewards.mathvision_scoring import find_math_answer, latex_value, mathvision_equal, mathvision_extract
from tests.data.bench_fixtures import image_struct, png, write_parquet

MV_QUESTION = ("As shown in the figure, angle A = 80.0, angle B = 60.0, DE parallel BC, then the size of angle CED "
               "is ()\nChoices:\nA:40°\nB:60°\nC:120°\nD:140°")


def _mathverse_item(sample: str, version: str, image: str, question: str, answer: str, qtype: str) -> dict:
    return {"sample_index": sample, "problem_index": "1", "problem_version": version, "question": question,
            "image": image, "answer": answer, "question_type": qtype,
            "metadata": {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"},
            "query_wo": "Please directly answer the question and provide the correct option letter, e.g., A, B, C, "
                        "D.\nQuestion: " + question,
            "query_cot": "Please first conduct reasoning, and then answer the question and provide the correct "
                         "option letter, e.g., A, B, C, D, at the end.\nQuestion: " + question}


def _mathverse(root: Path) -> Path:
    (root / "images" / "images_version_1-4").mkdir(parents=True)
    (root / "images" / "images_version_5").mkdir()
    (root / "images/images_version_1-4/image_1.png").write_bytes(png((10, 10, 10)))
    (root / "images/images_version_5/image_1.png").write_bytes(png((20, 20, 20)))
    items = [
        _mathverse_item("1", "Text Dominant", "images_version_1-4/image_1.png", MV_QUESTION, "D", "multi-choice"),
        _mathverse_item("5", "Vision Only", "images_version_5/image_1.png",
                        "According to the question shown in the image, please directly answer the question.", "D",
                        "multi-choice"),
        _mathverse_item("3421", "Text Lite", "images_version_1-4/image_1.png", "Find L, rounded down to the nearest cm.",
                        "14", "free-form"),
        _mathverse_item("9", "Text Only", "", MV_QUESTION, "D", "multi-choice"),
    ]
    (root / "testmini.json").write_text(json.dumps(items, indent=4, ensure_ascii=False))
    return root


def test_mathverse_json_and_parquet_layouts(tmp_path: Path) -> None:
    root = _mathverse(tmp_path / "MathVerse")
    tasks = {t.id: t for t in load_benchmark("mathverse", root)}
    assert sorted(tasks) == ["mathverse-1", "mathverse-3421", "mathverse-5"]  # Text Only (no image) is skipped
    td = tasks["mathverse-1"]
    assert td.answer == "D" and td.answer_type == "choice" and td.choices == ["40°", "60°", "120°", "140°"]
    assert td.question.startswith("Please directly answer") and td.metadata["category"] == "Text Dominant"
    assert Path(td.images[0]).name == "image_1.png" and "images_version_1-4" in td.images[0]
    assert tasks["mathverse-5"].choices is None  # Vision Only: the options are in the image
    assert tasks["mathverse-3421"].answer == "14" and tasks["mathverse-3421"].answer_type == "text"
    cot = load_benchmark("mathverse", root, prompt="cot", limit=1)
    assert cot[0].question.startswith("Please first conduct reasoning")
    # the Hugging Face parquet: same fields, the image inside
    rows = json.loads((root / "testmini.json").read_text())[:3]
    for r in rows:
        r["image"] = image_struct(png((30, 30, 30)))
    write_parquet(tmp_path / "hf" / "testmini.parquet", rows)
    hf = load_benchmark("mathverse", tmp_path / "hf", image_dir=tmp_path / "img")
    assert [t.id for t in hf] == ["mathverse-1", "mathverse-5", "mathverse-3421"]
    assert Path(hf[0].images[0]).parent == tmp_path / "img"


def test_mathverse_scoring_quick_match(tmp_path: Path) -> None:
    tasks = {t.id: t for t in load_benchmark("mathverse", _mathverse(tmp_path / "MathVerse"))}
    mc, free = tasks["mathverse-1"], tasks["mathverse-3421"]
    assert match_answer("D", mc).correct and match_answer("D:140°", mc).correct and match_answer("(D)", mc).correct
    assert not match_answer("C", mc).correct and not match_answer("140°", mc).correct  # the letter is compared
    assert match_answer("14", free).correct and match_answer("14.0", free).correct  # numbers compare as numbers
    assert not match_answer("14 cm", free).correct  # quick match compares the extraction as written


def test_mathverse_published_answer_quirks(tmp_path: Path) -> None:
    """Multiple-choice answers in testmini.json that are not one letter: "(C)", the option's text, two letters."""
    root = _mathverse(tmp_path / "MathVerse")
    tf = "True or false: the distance is the opposite side.\nChoice:\nA. True\nB. False"
    items = [_mathverse_item("40", "Text Lite", "images_version_1-4/image_1.png", tf, "False", "multi-choice"),
             _mathverse_item("41", "Text Lite", "images_version_1-4/image_1.png", MV_QUESTION, "(C)", "multi-choice"),
             _mathverse_item("42", "Text Lite", "images_version_1-4/image_1.png", MV_QUESTION, "C\nD", "multi-choice"),
             _mathverse_item("43", "Text Lite", "images_version_1-4/image_1.png", "Find the area.",
                             "Area $=9.4 \\mathrm{~cm}^{2}$", "free-form")]
    (root / "testmini.json").write_text(json.dumps(items))
    text, paren, two, area = load_benchmark("mathverse", root)
    assert (text.answer_type, text.answer, text.metadata["options"]) == ("text", "False", ["True", "False"])
    assert match_answer("B", text).correct and match_answer("False", text).correct and not match_answer("A", text).correct
    assert (paren.answer_type, paren.answer) == ("choice", "C") and match_answer("C", paren).correct
    assert two.answer_type == "text" and not match_answer("C", two).correct
    # the answer as published, or with the $ / \mathrm wrapping removed that an extracted answer loses; "9.4" alone
    # needs the judge, as in the official evaluation
    assert match_answer("Area $=9.4 \\mathrm{~cm}^{2}$", area).correct and not match_answer("9.4", area).correct


def test_mathverse_errors(tmp_path: Path) -> None:
    root = _mathverse(tmp_path / "MathVerse")
    items = json.loads((root / "testmini.json").read_text())
    items[0]["image"] = "images_version_1-4/missing.png"
    (root / "testmini.json").write_text(json.dumps(items))
    with pytest.raises(LoaderError, match=r"testmini.json: item 0 \(sample_index 1\): field image "
                                          r"'images_version_1-4/missing.png' not found.*images.zip"):
        load_benchmark("mathverse", root)
    del items[0]["answer"]
    (root / "testmini.json").write_text(json.dumps(items))
    with pytest.raises(LoaderError, match=r"item 0 \(sample_index 1\): missing field\(s\) answer"):
        load_benchmark("mathverse", root)
    with pytest.raises(LoaderError, match="holds none of testmini.parquet, testmini.json"):
        load_benchmark("mathverse", tmp_path)


def _mathvision(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "images").mkdir()
    for i in (4, 6, 17):
        (root / "images" / f"{i}.jpg").write_bytes(png((i, i, i)))
    rows = [
        {"id": "4", "question": "How many different digits can you find in this picture?\n<image1>", "options": [],
         "answer": "6", "solution": None, "level": 1, "subject": "counting", "image": "images/4.jpg"},
        {"id": "6", "question": "In which picture can we see the kittens?\n<image1>",
         "options": ["A", "B", "C", "D", "E"], "answer": "D", "solution": None, "level": 3, "subject": "logic",
         "image": "images/6.jpg"},
        {"id": "17", "question": "Which colour is the middle one?\n<image1>",
         "options": ["red", "blue", "green", "Yellow", "This cannot be worked out for certain."], "answer": "A",
         "solution": None, "level": 2, "subject": "logic", "image": "images/17.jpg"},
    ]
    (root / "data" / "testmini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_mathvision_github_and_hf_layouts(tmp_path: Path) -> None:
    root = _mathvision(tmp_path / "MATH-V")
    tasks = {t.id: t for t in load_benchmark("mathvision", root)}
    count, letters, texts = tasks["mathvision-4"], tasks["mathvision-6"], tasks["mathvision-17"]
    assert count.answer == "6" and count.answer_type == "text" and count.metadata["category"] == "counting"
    # options that are only the letters are not written out (the choices are in the picture)
    assert letters.question == "In which picture can we see the kittens?\n<image1>" and letters.answer == "D"
    assert texts.question.endswith("<image1>\n(A) red\n(B) blue\n(C) green\n(D) Yellow\n"
                                   "(E) This cannot be worked out for certain.\n")
    assert texts.answer_type == "choice" and texts.choices[0] == "red"
    rows = [json.loads(x) for x in (root / "data/testmini.jsonl").read_text().splitlines()]
    for r in rows:
        r["decoded_image"] = image_struct(png((9, 9, 9)))
    write_parquet(tmp_path / "hf" / "data" / "testmini-00000-of-00001-f8ff.parquet", rows)
    hf = load_benchmark("mathvision", tmp_path / "hf", image_dir=tmp_path / "img")
    assert [t.id for t in hf] == ["mathvision-4", "mathvision-6", "mathvision-17"]
    assert Path(hf[0].images[0]).parent == tmp_path / "img"
    with pytest.raises(LoaderError, match=r"data/test.jsonl nor data/test-\*.parquet"):
        load_benchmark("mathvision", root, split="test")
    for r in rows:
        del r["decoded_image"]
    rows[0]["options"] = "ABCDE"  # a string where the format has a list
    (root / "data" / "testmini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(LoaderError, match=r"testmini.jsonl: item 0 \(id 4\): field options must be a list"):
        load_benchmark("mathvision", root)
    rows[0]["options"] = []
    (root / "data" / "testmini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "images/4.jpg").unlink()
    with pytest.raises(LoaderError, match=r"testmini.jsonl: item 0 \(id 4\): field image 'images/4.jpg' not found"):
        load_benchmark("mathvision", root)


def test_mathvision_scoring_as_published(tmp_path: Path) -> None:
    tasks = {t.id: t for t in load_benchmark("mathvision", _mathvision(tmp_path / "MATH-V"))}
    count, letters, texts = tasks["mathvision-4"], tasks["mathvision-6"], tasks["mathvision-17"]
    assert match_answer("\\boxed{6}", count).correct and match_answer("The answer is 6.", count).correct
    assert match_answer("6.0", count).correct and not match_answer("7", count).correct
    assert match_answer("(D)", letters).correct and match_answer("\\boxed{D}", letters).correct
    assert not match_answer("E", letters).correct
    assert match_answer("A", texts).correct and match_answer("red", texts).correct  # letter or the option's text


def test_mathvision_rules_hand_checked() -> None:
    assert find_math_answer("so \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert find_math_answer("x = 5^{\\circ}") == "5"
    assert mathvision_extract("The final answer is 12. Done") == "12"
    assert mathvision_extract("Looking at it, the answer is C.") == "c"
    # 1/2 and 0.5 evaluate to the same number; 0.333 vs \frac{1}{3}: round(0.333, 2) = 0.33 = round(1/3, 2)
    assert mathvision_equal("\\frac{1}{2}", "0.5") and mathvision_equal("0.333", "\\frac{1}{3}")
    assert not mathvision_equal("0.34", "\\frac{1}{3}")
    assert latex_value("2\\sqrt{3}") == pytest.approx(3.4641016) and latex_value("3\\pi") == pytest.approx(9.424778)
    assert mathvision_equal("(1,2)", "(1.0,2.0)")  # tuples: elements evaluated, rounded to 2 places
    assert latex_value("x+1") is None and not mathvision_equal("d", "e")
    # published answers: dollars and spaces dropped; exact rationals, so (3^1008 - 1) / 3^1009 = 0.333...
    assert mathvision_equal("$4 \\pi$", "4\\pi") and latex_value("$\\frac{3^{1008}-1}{3^{1009}}$") == pytest.approx(1 / 3)
    assert latex_value("\\frac{7^3}{2^{12} 13^2}") == pytest.approx(343 / (4096 * 169))


def test_vlmevalkit_mathvision_tsv(tmp_path: Path) -> None:
    """VLMEvalKit's MathVision_MINI.tsv: `choices` a Python list (empty when open), `category` the subject."""
    import base64
    import csv

    tsv = tmp_path / "MathVision_MINI.tsv"
    img = base64.b64encode(png((3, 3, 3))).decode()
    with tsv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["index", "image", "question", "answer", "choices", "category", "level"])
        w.writerow(["4", img, "How many digits?", "6", "[]", "counting", "1"])
        w.writerow(["17", "4", "Which colour?", "A", "['red', 'blue', 'green', 'Yellow', 'unsure']", "logic", "2"])
    count, colour = load_benchmark("vlmevalkit", tsv, image_dir=tmp_path / "img")
    assert (count.answer_type, colour.answer_type, colour.choices[0]) == ("text", "choice", "red")
    assert count.images == colour.images and colour.metadata["category"] == "logic"
    assert match_answer("\\boxed{6}", count).correct and match_answer("red", colour).correct
    assert not match_answer("B", colour).correct
