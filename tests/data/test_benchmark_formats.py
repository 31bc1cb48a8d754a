"""Benchmark files in their exact published formats, quirks included, written here (small) and read by the loaders:
OCRBench.json with shared ids, CodeVision's mvtoolbench.parquet (veRL rows), MathVista's precision and duplicate
options, VLMEvalKit TSVs with image references; and the benchmarks' own scoring rules."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.loaders import LoaderError, load_benchmark
from rewards.answers import match_answer, parse_choice


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (48, 32), mark: tuple[int, int, int, int] | None = None
         ) -> bytes:
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = colour
    if mark is not None:
        x1, y1, x2, y2 = mark
        arr[y1:y2, x1:x2] = (255, 255, 255)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- OCRBench ------------------------------------------------------------------------------------------------


def _ocrbench(root: Path) -> Path:
    """OCRBench.json as published: a list; `id` repeats across source datasets; `answers` a list or a string."""
    (root / "OCRBench_Images" / "IIIT5K").mkdir(parents=True)
    (root / "OCRBench_Images" / "svt").mkdir()
    (root / "OCRBench_Images" / "HME100k").mkdir()
    (root / "OCRBench_Images/IIIT5K/a.png").write_bytes(_png((200, 10, 10), mark=(2, 2, 10, 6)))
    (root / "OCRBench_Images/svt/b.png").write_bytes(_png((10, 200, 10), mark=(30, 20, 40, 28)))
    (root / "OCRBench_Images/HME100k/c.jpg").write_bytes(_png((10, 10, 200)))
    items = [
        {"dataset_name": "IIIT5K", "id": 5, "question": "what is written in the image?", "answers": ["Emerald"],
         "type": "Regular Text Recognition", "image_path": "IIIT5K/a.png"},
        {"dataset_name": "svt", "id": 5, "question": "what is written in the image?", "answers": ["CAFE"],
         "type": "Irregular Text Recognition", "image_path": "svt/b.png"},
        {"dataset_name": "HME100k", "id": 6, "question": "Please write out the expression of the formula in the "
         "image using LaTeX format.", "answers": "x ^ { 2 } + 1",
         "type": "Handwritten Mathematical Expression Recognition", "image_path": "HME100k/c.jpg"},
    ]
    (root / "OCRBench.json").write_text(json.dumps(items, indent=1))
    return root


def test_ocrbench_shared_ids_get_their_own_tasks_and_images(tmp_path: Path) -> None:
    root = _ocrbench(tmp_path / "OCRBench")
    tasks = load_benchmark("ocrbench", root, image_dir=tmp_path / "t", transforms="all")
    ids = [t.id for t in tasks]
    assert len(ids) == len(set(ids)) == 3 * 6
    assert ids[:2] == ["ocrbench-0", "ocrbench-0-rotate90"] and "ocrbench-1-flip_v" in ids
    by_id = {t.id: t for t in tasks}
    assert by_id["ocrbench-0"].metadata["ocrbench_id"] == by_id["ocrbench-1"].metadata["ocrbench_id"] == 5
    for n in range(3):  # every transformed copy shows its own item's image, turned
        original = np.asarray(Image.open(by_id[f"ocrbench-{n}"].images[0]).convert("RGB"))
        for op, undo in (("rotate90", lambda a: np.rot90(a, -1)), ("flip_h", lambda a: a[:, ::-1])):
            moved = np.asarray(Image.open(by_id[f"ocrbench-{n}-{op}"].images[0]).convert("RGB"))
            assert np.array_equal(undo(moved), original), (n, op)
    # loading again reuses the content-named files: same paths, no new files
    again = load_benchmark("ocrbench", root, image_dir=tmp_path / "t", transforms="all")
    assert [t.images for t in again] == [t.images for t in tasks]
    # 12 files, not 15: item 2's image is one flat colour, so its rotate90/rotate270 copies are the same pixels,
    # and so are its rotate180/flip_h/flip_v copies (content naming stores each once: 5 + 5 + 2)
    assert len(list((tmp_path / "t").iterdir())) == 12


def test_ocrbench_scoring_as_published(tmp_path: Path) -> None:
    tasks = {t.id: t for t in load_benchmark("ocrbench", _ocrbench(tmp_path / "OCRBench"))}
    word, formula = tasks["ocrbench-0"], tasks["ocrbench-2"]
    assert word.metadata["scoring"] == "ocrbench" and formula.metadata["ignore_spaces"]
    assert match_answer("The word is EMERALD.", word).correct  # lowercased substring
    assert match_answer("emeralds", word).correct  # a raw substring test, as published
    assert not match_answer("Emerand", word).correct
    assert match_answer("x^{2}+1", formula).correct  # HME100k: spaces removed ...
    assert not match_answer("X^{2}+1", formula).correct  # ... and case kept


# ---- MVToolBench ---------------------------------------------------------------------------------------------


def _mvtoolbench_parquet(path: Path, *, drop: str | None = None) -> tuple[bytes, list[int]]:
    """A one-row mvtoolbench.parquet in veRL format. The upright image (60x40) has a white mark at the bbox; the
    image stored is the upright one turned 90 degrees counter-clockwise (CodeVision's `rotate_90`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    bbox = [40, 10, 52, 18]
    upright = Image.open(io.BytesIO(_png((90, 60, 30), size=(60, 40), mark=tuple(bbox))))  # type: ignore[arg-type]
    buf = io.BytesIO()
    upright.rotate(90, expand=True).save(buf, format="PNG")
    question = "What is on the small sign?\n(A) 4521\n(B) 4251\n(C) 4512\n(D) 5421"
    row = {
        "data_source": "mvtoolbench",
        "prompt": [{"role": "user", "content": "<image>" + question}],
        "images": [{"bytes": buf.getvalue(), "path": None}],
        "ability": "vision",
        "reward_model": {"ground_truth": "A", "style": "rule"},
        "extra_info": {"answer": "A", "bbox": bbox, "question": question, "transform": ["crop", "rotate_90"],
                       "index": 17},
    }
    if drop:
        del row[drop]
    pq.write_table(pa.Table.from_pylist([row]), path)
    return buf.getvalue(), bbox


def test_mvtoolbench_parquet_as_published(tmp_path: Path) -> None:
    _mvtoolbench_parquet(tmp_path / "mvtoolbench.parquet")
    (task,) = load_benchmark("mvtoolbench", tmp_path, image_dir=tmp_path / "img")
    assert task.id == "mvtoolbench-17" and task.answer == "A" and task.answer_type == "choice"
    assert task.choices == ["4521", "4251", "4512", "5421"]
    # rotate_90 (counter-clockwise, as PIL's rotate) was applied, so the image must be turned back: rotate270
    assert task.required_ops == ["rotate270", "crop"] and task.metadata["transform"] == "rotate90"
    # the upright bbox (40, 10, 52, 18) of the 60x40 image lands at (y1, W - x2, y2, W - x1) = (10, 8, 18, 20) in
    # the given 40x60 image, and it holds the white mark there
    assert task.evidence[0].box == (10.0, 8.0, 18.0, 20.0)
    given = np.asarray(Image.open(task.images[0]).convert("RGB"))
    assert given.shape == (60, 40, 3) and (given[8:20, 10:18] == 255).all() and (given[:8] != 255).all()
    assert task.metadata["bbox_frame"] == "upright"  # auto: only the upright reading fits the 40x60 image
    with pytest.raises(LoaderError, match=r"bbox \[40, 10, 52, 18\] .* does not fit the 40x60 image as given; .*"
                                          "pass bbox_frame=upright"):
        load_benchmark("mvtoolbench", tmp_path / "mvtoolbench.parquet", image_dir=tmp_path / "img", bbox_frame="given")


def test_mvtoolbench_bbox_frame_is_decided_per_file(tmp_path: Path) -> None:
    # boxes in the turned (given, 40x60) image's coordinates. [10, 8, 18, 20] fits either way (read as upright in the
    # 60x40 image it maps by rotate90 to (y1, 60 - x2, y2, 60 - x1) = (8, 42, 20, 50)); [2, 45, 38, 58] fits only as
    # given (as upright, y2 = 58 > 40). Auto takes upright only when every box fits so, hence: given for both.
    import pyarrow as pa
    import pyarrow.parquet as pq

    _mvtoolbench_parquet(tmp_path / "one.parquet")
    row = pq.read_table(tmp_path / "one.parquet").to_pylist()[0]
    given_rows = [dict(row, extra_info={**row["extra_info"], "bbox": bbox, "index": i})
                  for i, bbox in enumerate(([10, 8, 18, 20], [2, 45, 38, 58]))]
    (tmp_path / "given").mkdir()
    pq.write_table(pa.Table.from_pylist(given_rows), tmp_path / "given" / "mvtoolbench.parquet")
    tasks = load_benchmark("mvtoolbench", tmp_path / "given", image_dir=tmp_path / "img")
    assert [t.metadata["bbox_frame"] for t in tasks] == ["given", "given"]
    assert tasks[0].evidence[0].box == (10.0, 8.0, 18.0, 20.0) and tasks[1].evidence[0].box == (2.0, 45.0, 38.0, 58.0)
    bad_rows = [dict(given_rows[0], extra_info={**given_rows[0]["extra_info"], "bbox": [0, 0, 500, 500]})]
    (tmp_path / "bad").mkdir()
    pq.write_table(pa.Table.from_pylist(bad_rows), tmp_path / "bad" / "mvtoolbench.parquet")
    with pytest.raises(LoaderError, match=r"mvtoolbench.parquet: row 0: bbox \[0, 0, 500, 500\] fits the 40x60 image "
                                          "as given in neither the upright nor the given image's coordinates"):
        load_benchmark("mvtoolbench", tmp_path / "bad", image_dir=tmp_path / "img")


def test_mvtoolbench_bad_input_names_what_was_expected_and_where(tmp_path: Path) -> None:
    _mvtoolbench_parquet(tmp_path / "mvtoolbench.parquet", drop="extra_info")
    with pytest.raises(LoaderError, match=r"mvtoolbench.parquet: missing column\(s\) extra_info; found: .*prompt"):
        load_benchmark("mvtoolbench", tmp_path / "mvtoolbench.parquet", image_dir=tmp_path / "img")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoaderError, match=rf"{empty} holds neither mvtoolbench.parquet .*MVToolBench.jsonl"):
        load_benchmark("mvtoolbench", empty)


# ---- MathVista -----------------------------------------------------------------------------------------------


def _mathvista(root: Path) -> Path:
    """testmini.json as published on GitHub (dict by pid), without the `query` field so the loader builds it."""
    (root / "images").mkdir(parents=True)
    for pid in ("1", "2", "3"):
        (root / "images" / f"{pid}.jpg").write_bytes(_png((50, 50, 50)))
    base = {"unit": None, "metadata": {"task": "figure question answering", "skills": ["arithmetic reasoning"]}}
    data = {
        "1": {**base, "pid": "1", "question": "What is the ratio of the bars?", "image": "images/1.jpg",
              "choices": None, "precision": 1.0, "answer": "1.2", "question_type": "free_form",
              "answer_type": "float"},
        "2": {**base, "pid": "2", "question": "How heavy is the box?", "image": "images/2.jpg", "choices": None,
              "unit": "g", "precision": None, "answer": "1000", "question_type": "free_form",
              "answer_type": "integer"},
        "3": {**base, "pid": "3", "question": "Which length is the side?", "image": "images/3.jpg",
              "choices": ["3", "5", "3", "7"], "precision": None, "answer": "3", "question_type": "multi_choice",
              "answer_type": "text"},
    }
    (root / "testmini.json").write_text(json.dumps(data))
    return root


def test_mathvista_official_query_and_scoring(tmp_path: Path) -> None:
    tasks = {t.id: t for t in load_benchmark("mathvista", _mathvista(tmp_path / "mv"))}
    flt, integer, mc = tasks["mathvista-1"], tasks["mathvista-2"], tasks["mathvista-3"]
    assert flt.question == ("Hint: Please answer the question requiring a floating-point number with one decimal "
                            "place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.\n"
                            "Question: What is the ratio of the bars?")
    assert integer.question.endswith("Question: How heavy is the box? (Unit: g)")
    assert mc.question.endswith("Choices:\n(A) 3\n(B) 5\n(C) 3\n(D) 7") and mc.answer == "A"
    # floats are rounded to the precision (round(1.23, 1) = 1.2), then compared as strings
    assert match_answer("1.23", flt).correct and match_answer("1.2", flt).correct
    assert not match_answer("1.3", flt).correct and not match_answer("about 1.2", flt).correct
    # integers are truncated: int(float("1000.7")) = 1000
    assert match_answer("1000.7", integer).correct and not match_answer("999.9", integer).correct
    # a letter becomes its option's text, so both options reading "3" are right; "5" is not
    assert match_answer("A", mc).correct and match_answer("C", mc).correct and match_answer("(C) 3", mc).correct
    assert not match_answer("B", mc).correct
    # neither a letter nor an option: the most similar option by edit distance ("7." is one edit from "7")
    assert not match_answer("7.", mc).correct


def test_parse_choice_prefers_the_letter_over_option_text() -> None:
    # "B" is option A's text and also the letter B: the letter wins
    assert parse_choice("B", ["B", "A", "C"]) == "B"
    assert parse_choice("the answer is A", ["B", "A", "C"]) == "A"
    assert parse_choice("c", ["x", "y", "c"]) == "C"
    assert parse_choice("zebra", ["lion", "zebra"]) == "B"  # no letter: the option's text names it


# ---- VLMEvalKit TSV ------------------------------------------------------------------------------------------


def _tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """Tab-separated, a header row, fields with newlines quoted: what VLMEvalKit's pandas `to_csv(sep="\\t")`
    writes."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def test_vlmevalkit_tsv_image_references(tmp_path: Path) -> None:
    red, green = _b64(_png((200, 0, 0))), _b64(_png((0, 200, 0)))
    f = _tsv(tmp_path / "OCRBench.tsv", ["index", "image", "question", "answer", "category"], [
        ["0", red, "what is written in the image?", "['Emerald', 'EMERALD']", "Regular Text Recognition"],
        ["1", "0", "what is the first letter?", "['E']", "Scene Text-centric VQA"],  # shares row 0's image
        ["2", green, "formula?", "['x ^ 2']", "Handwritten Mathematical Expression Recognition"],
    ])
    tasks = load_benchmark("vlmevalkit", f, image_dir=tmp_path / "img")
    assert [t.id for t in tasks] == ["ocrbench-0", "ocrbench-1", "ocrbench-2"]
    assert tasks[1].images == tasks[0].images != tasks[2].images
    assert tasks[0].metadata["answers"] == ["Emerald", "EMERALD"] and tasks[2].metadata["ignore_spaces"]
    assert match_answer("x^2", tasks[2]).correct and match_answer("it says emerald", tasks[0]).correct

    bad = _tsv(tmp_path / "OCRBench_bad.tsv", ["index", "image", "question", "answer", "category"],
               [["0", red, "q", "['a']", "x"], ["1", "7", "q", "['b']", "x"]])
    with pytest.raises(LoaderError, match=r"OCRBench_bad.tsv: row 2 \(index 1\): the image cell '7' .* 64 "
                                          r"characters or fewer.*no row has that index"):
        load_benchmark("vlmevalkit", bad, image_dir=tmp_path / "img")


def test_vlmevalkit_tsv_every_supported_dataset(tmp_path: Path) -> None:
    img = _b64(_png((10, 20, 30)))
    mcq = ["index", "question", "A", "B", "C", "D", "answer", "category", "image"]
    vstar = _tsv(tmp_path / "VStarBench.tsv", mcq, [["0", "What is the colour of the cup?", "red", "blue", "", "",
                                                      "B", "direct_attributes", img]])
    (t,) = load_benchmark("vlmevalkit", vstar, image_dir=tmp_path / "img")
    assert t.choices == ["red", "blue"] and t.answer == "B" and "(B) blue" in t.question and t.id == "vstarbench-0"
    hr = _tsv(tmp_path / "HRBench8K.tsv", [*mcq, "cycle_category"],
              [["3", "Which sign?", "a", "b", "c", "d", "C", "single", img, "0"], ["4", "Again?", "a", "b", "c", "d",
                                                                                  "D", "single", "3", "1"]])
    tasks = load_benchmark("vlmevalkit", hr, image_dir=tmp_path / "img")
    assert [t.answer for t in tasks] == ["C", "D"] and tasks[0].images == tasks[1].images
    mv = _tsv(tmp_path / "MathVista_MINI.tsv",
              ["index", "image", "question", "answer", "question_type", "answer_type", "precision", "choices",
               "answer_option", "unit", "task", "skills"],
              [["1", img, "Hint: ...\nQuestion: ratio?", "1.2", "free_form", "float", "1.0", "", "", "", "fqa", "[]"],
               ["2", "1", "Hint: ...\nQuestion: side?\nChoices:\n(A) 3\n(B) 5\n(C) 3", "3", "multi_choice", "text",
                "", "['3', '5', '3']", "A", "", "geometry", "[]"]])
    flt, mc = load_benchmark("vlmevalkit", mv, image_dir=tmp_path / "img")
    assert flt.answer == 1.2 and match_answer("1.24", flt).correct and mc.answer == "A" and mc.choices == ["3", "5", "3"]
    assert match_answer("C", mc).correct and not match_answer("B", mc).correct
    blind = _tsv(tmp_path / "VLMBlind.tsv", ["index", "image", "question", "answer", "category"],
                 [["0", img, "How many circles? Answer in curly brackets, e.g. {3}.", "{5}", "Olympic Counting"]])
    (b,) = load_benchmark("vlmevalkit", blind, image_dir=tmp_path / "img")
    assert (b.answer, b.answer_type, b.metadata["task"]) == (5.0, "number", "Olympic Counting")
    with pytest.raises(LoaderError, match=r"VStarBench_x.tsv: missing column\(s\) A, B; found: index, image"):
        load_benchmark("vlmevalkit", _tsv(tmp_path / "VStarBench_x.tsv", ["index", "image", "question", "answer"],
                                          [["0", img, "q", "A"]]))
    with pytest.raises(LoaderError, match="cannot tell the dataset from the file name mystery.tsv"):
        load_benchmark("vlmevalkit", _tsv(tmp_path / "mystery.tsv", ["index"], []))


def test_ocrbench_repository_layout(tmp_path: Path) -> None:
    """The MultimodalOCR repository keeps the file at OCRBench/json_files/OCRBench.json; the images archive unpacks
    to OCRBench_Images/ beside the OCRBench/ folder."""
    src = _ocrbench(tmp_path / "flat")
    (tmp_path / "repo" / "OCRBench" / "json_files").mkdir(parents=True)
    (src / "OCRBench.json").rename(tmp_path / "repo" / "OCRBench" / "json_files" / "OCRBench.json")
    (src / "OCRBench_Images").rename(tmp_path / "repo" / "OCRBench_Images")
    tasks = load_benchmark("ocrbench", tmp_path / "repo" / "OCRBench")
    assert len(tasks) == 3 and Path(tasks[0].images[0]).parts[-3:] == ("OCRBench_Images", "IIIT5K", "a.png")


def test_mvtoolbench_scored_by_codevisions_rule_path(tmp_path: Path) -> None:
    from rewards.codevision_scoring import codevision_equivalent

    _mvtoolbench_parquet(tmp_path / "mvtoolbench.parquet")
    (task,) = load_benchmark("mvtoolbench", tmp_path, image_dir=tmp_path / "img")
    assert task.metadata["scoring"] == "mvtoolbench" and task.metadata["answer_text"] == "A"
    # a letter answer: the last standalone A-D of the upper-cased prediction
    assert match_answer("A", task).correct and match_answer("I think (B)... no, A", task).correct
    assert not match_answer("B", task).correct
    # numbers: equal as floats, or the last number read, within 1e-4 (|0.50001 - 0.5| = 1e-5); "1/2" reads as its
    # last number, 2, as in CodeVision's code
    assert codevision_equivalent("2.0", "2") and codevision_equivalent("there are 2", "2")
    assert codevision_equivalent("0.50001", "0.5") and not codevision_equivalent("0.51", "0.5")
    assert not codevision_equivalent("1/2", "0.5")
    # text: exact string equality only (CodeVision leaves the rest to its LLM judge)
    assert codevision_equivalent("park", "park") and not codevision_equivalent("Park", "park")
