"""Benchmark loaders on small fixtures written in each benchmark's published format (tests/data/fixtures/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from data import read_tasks, write_tasks
from data.loaders import LOADERS, LoaderError, load_benchmark

FIX = Path(__file__).parent / "fixtures"


def _valid_on_disk(tasks, tmp_path: Path) -> None:
    """Every loaded task survives the task file's full validation (images open, boxes inside them)."""
    write_tasks(tmp_path / "check.jsonl", tasks)
    assert len(read_tasks(tmp_path / "check.jsonl", image_check="decode")) == len(tasks)


def test_vstar(tmp_path: Path) -> None:
    tasks = load_benchmark("vstar", FIX / "vstar_bench")
    assert [t.id for t in tasks] == ["vstar-direct_attributes-0", "vstar-relative_position-115"]
    a, b = tasks
    assert a.answer == "A" and a.choices == ["rubber", "cotton", "leather", "nylon"] and a.answer_type == "choice"
    assert "(A) rubber" in a.question and a.required_ops == ["crop"] and a.split == "test" and a.source == "vstar"
    assert a.evidence[0].box == (56, 14, 71, 29) and a.evidence[0].label == "glove"  # [x, y, w, h] -> x1 y1 x2 y2
    assert b.evidence[1].box == (100, 70, 120, 90)  # clipped to the 120x90 image
    _valid_on_disk(tasks, tmp_path)


def test_vstar_without_question_file_shuffles_options_deterministically(tmp_path: Path) -> None:
    root = tmp_path / "v"
    shutil.copytree(FIX / "vstar_bench", root)
    (root / "test_questions.jsonl").unlink()
    first, again = load_benchmark("vstar", root), load_benchmark("vstar", root)
    assert [t.model_dump() for t in first] == [t.model_dump() for t in again]
    glove = next(t for t in first if "glove" in t.question)
    assert glove.choices[ord(glove.answer) - 65] == "rubber"  # the annotation's first option is the correct one


def test_vstar_question_file_without_labels_uses_the_annotations(tmp_path: Path) -> None:
    root = tmp_path / "v"
    shutil.copytree(FIX / "vstar_bench", root)
    rows = [json.loads(x) for x in (root / "test_questions.jsonl").read_text().splitlines()]
    (root / "test_questions.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "label"}) + "\n"
                                                       for r in rows))
    assert [t.answer for t in load_benchmark("vstar", root)] == ["A", "A"]


@pytest.mark.parametrize(("path", "opts", "tag"), [("hrbench/hr_bench_4k.tsv", {}, "4k"),
                                                   ("hrbench", {"version": "8k"}, "8k")])
def test_hrbench_tsv_and_parquet(tmp_path: Path, path: str, opts: dict, tag: str) -> None:
    tasks = load_benchmark("hrbench", FIX / path, image_dir=tmp_path / "img", **opts)
    assert [t.id for t in tasks] == [f"hrbench_{tag}-0", f"hrbench_{tag}-1"]
    t = tasks[0]
    assert t.answer == "C" and t.choices == ["red", "blue", "green", "black"] and "(C) green" in t.question
    assert t.metadata["category"] == "single" and t.source == f"hrbench_{tag}"
    assert Path(t.images[0]).parent == tmp_path / "img" and Image.open(t.images[0]).size == (96, 64)
    again = load_benchmark("hrbench", FIX / path, image_dir=tmp_path / "img", **opts)  # written once, same files
    assert again[0].images == t.images and len(list((tmp_path / "img").iterdir())) == 2
    _valid_on_disk(tasks, tmp_path)


def test_hrbench_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="pass version=4k or version=8k"):
        load_benchmark("hrbench", FIX / "hrbench")
    bad = tmp_path / "hr_bench_4k.tsv"
    bad.write_text("index\tquestion\n0\tq\n")
    with pytest.raises(LoaderError, match=r"hr_bench_4k.tsv: missing column\(s\) answer, category"):
        load_benchmark("hrbench", bad, image_dir=tmp_path)


def test_ocrbench_and_its_transformed_variants(tmp_path: Path) -> None:
    tasks = load_benchmark("ocrbench", FIX / "ocrbench")
    assert [t.id for t in tasks] == ["ocrbench-0", "ocrbench-1"]  # row positions: published ids repeat
    assert [t.metadata["ocrbench_id"] for t in tasks] == [0, 900]
    assert tasks[0].answer == "Emerald" and tasks[0].metadata["answers"] == ["Emerald", "EMERALD"]
    assert tasks[0].metadata["scoring"] == "ocrbench" and not tasks[0].metadata["ignore_spaces"]
    assert tasks[1].metadata["ignore_spaces"] and tasks[1].metadata["type"].startswith("Handwritten")

    variants = load_benchmark("ocrbench", FIX / "ocrbench", image_dir=tmp_path / "t", transforms="all", limit=1)
    assert [t.id for t in variants] == ["ocrbench-0", "ocrbench-0-rotate90", "ocrbench-0-rotate180",
                                        "ocrbench-0-rotate270", "ocrbench-0-flip_h", "ocrbench-0-flip_v"]
    original = Image.open(variants[0].images[0]).convert("RGB")
    undo = {"rotate90": lambda im: im.rotate(90, expand=True), "rotate270": lambda im: im.rotate(-90, expand=True),
            "rotate180": lambda im: im.rotate(180), "flip_h": ImageOps.mirror, "flip_v": ImageOps.flip}
    for t in variants[1:]:
        (op,) = t.required_ops
        fixed = undo[op](Image.open(t.images[0]).convert("RGB"))
        assert np.array_equal(np.asarray(fixed), np.asarray(original)), t.id
        assert t.metadata["original_id"] == "ocrbench-0" and t.answer == "Emerald"
    _valid_on_disk(variants, tmp_path)


def test_transforms_map_evidence_boxes(tmp_path: Path) -> None:
    tasks = load_benchmark("vstar", FIX / "vstar_bench", image_dir=tmp_path, transforms=["rotate90"], limit=1)
    orig, rot = tasks
    assert rot.required_ops == ["rotate270", "crop"]
    w = Image.open(orig.images[0]).size[0]
    x1, y1, x2, y2 = orig.evidence[0].box
    assert rot.evidence[0].box == (y1, w - x2, y2, w - x1)
    a = np.asarray(Image.open(orig.images[0]).convert("RGB"))[int(y1):int(y2), int(x1):int(x2)]
    rx1, ry1, rx2, ry2 = (int(v) for v in rot.evidence[0].box)
    b = np.asarray(Image.open(rot.images[0]).convert("RGB"))[ry1:ry2, rx1:rx2]
    assert np.array_equal(np.rot90(a), b)  # the box holds the same pixels, turned
    with pytest.raises(ValueError, match="unknown transform 'rotate45'"):
        load_benchmark("vstar", FIX / "vstar_bench", transforms="rotate45")


def test_mvtoolbench_documented_layout_and_aliases(tmp_path: Path) -> None:
    tasks = load_benchmark("mvtoolbench", FIX / "mvtoolbench")
    a, b = tasks
    assert a.id == "mvtoolbench-mvt-0001" and a.answer == "A" and a.required_ops == ["rotate270", "crop"]
    assert "(A) KX 4521" in a.question and a.evidence[0].box == (10, 20, 40, 30)
    assert b.id == "mvtoolbench-2" and b.answer == "7" and b.answer_type == "text"
    assert b.required_ops == ["flip_h", "crop"] and b.metadata["transform"] == "flip_h"  # from transform + box
    _valid_on_disk(tasks, tmp_path)
    bad = tmp_path / "MVToolBench.jsonl"
    bad.write_text(json.dumps({"image": "x.png", "question": "q", "answer": "a", "tools": ["teleport"]}) + "\n")
    (tmp_path / "x.png").write_bytes((FIX / "mvtoolbench/images/0002.png").read_bytes())
    with pytest.raises(LoaderError, match=r"MVToolBench.jsonl:1: unknown op 'teleport'; valid: rotate90"):
        load_benchmark("mvtoolbench", tmp_path)


def test_vlmsareblind(tmp_path: Path) -> None:
    tasks = load_benchmark("vlmsareblind", FIX / "vlmsareblind", image_dir=tmp_path / "img")
    assert [(t.answer, t.answer_type) for t in tasks] == [(2.0, "number"), ("Yes", "text"), ("o", "text")]
    assert tasks[0].metadata["task"] == "Line Plot Intersections" and tasks[0].metadata["generation"] == {"thickness": 2}
    assert tasks[0].question.startswith("How many times")
    only = load_benchmark("vlmsareblind", FIX / "vlmsareblind", image_dir=tmp_path / "img", tasks="Touching Circles")
    assert [t.answer for t in only] == ["Yes"]
    _valid_on_disk(tasks, tmp_path)


def test_mathvista_github_and_hf_layouts(tmp_path: Path) -> None:
    tasks = {t.id: t for t in load_benchmark("mathvista", FIX / "mathvista")}
    assert tasks["mathvista-1"].answer == 1.2 and tasks["mathvista-1"].answer_type == "number"
    assert tasks["mathvista-1"].metadata["precision"] == 1
    assert tasks["mathvista-2"].answer == 1000 and tasks["mathvista-2"].metadata["unit"] == "g"
    mc = tasks["mathvista-3"]
    assert mc.answer == "A" and mc.choices == ["97", "102", "107", "122"] and mc.metadata["answer_text"] == "97"
    assert tasks["mathvista-4"].answer == "[1, 3]" and tasks["mathvista-4"].answer_type == "text"
    hf = load_benchmark("mathvista", FIX / "mathvista_hf", image_dir=tmp_path / "img")
    assert [(t.id, t.answer) for t in hf] == [("mathvista-7", "B"), ("mathvista-11", 5.0)]
    _valid_on_disk([*tasks.values(), *hf], tmp_path)


def test_hf_loader_reads_saved_task_datasets_and_named_columns(tmp_path: Path) -> None:
    from data import tasks_to_dataset

    tasks = load_benchmark("vstar", FIX / "vstar_bench")
    tasks_to_dataset(tasks, embed_images=True).save_to_disk(str(tmp_path / "ds"))
    back = load_benchmark("hf", tmp_path / "ds", image_dir=tmp_path / "img")
    assert [t.model_dump(exclude={"images"}) for t in back] == [t.model_dump(exclude={"images"}) for t in tasks]
    other = load_benchmark("hf", FIX / "vlmsareblind", image_dir=tmp_path / "img2", question="prompt",
                           answer="groundtruth", image="image")
    assert len(other) == 3 and other[1].answer == "Yes"
    with pytest.raises(LoaderError, match="name its columns with question=, answer=, image="):
        load_benchmark("hf", FIX / "vlmsareblind", image_dir=tmp_path / "img3")


def test_registry_and_missing_paths() -> None:
    assert set(LOADERS) == {"vstar", "hrbench", "ocrbench", "chartqapro", "mvtoolbench", "vlmsareblind", "mathvista",
                            "mathverse", "mathvision", "mmmu", "visualpuzzles", "vlmevalkit", "hf"}
    with pytest.raises(ValueError, match="valid benchmarks: vstar, hrbench, ocrbench"):
        load_benchmark("mmmu_pro", FIX)
    with pytest.raises(LoaderError, match="OCRBench.json.*not found|not found.*OCRBench.json"):
        load_benchmark("ocrbench", FIX / "nowhere")
    with pytest.raises(LoaderError, match="unknown option"):
        load_benchmark("vstar", FIX / "vstar_bench", colour="red")
