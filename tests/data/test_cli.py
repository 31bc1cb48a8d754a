"""`codevl data synth|convert|validate|stats` end to end (curate is tested in test_curate.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.cli import main

FIX = Path(__file__).parent / "fixtures"


def test_synth_then_validate_and_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "or"
    assert main(["data", "synth", "orientation", "-n", "5", "--out", str(out), "--workers", "1", "--seed", "3",
                 "--set", "transforms=[rotate90]", "--set", "small_text_share=0", "--no-progress"]) == 0
    rows = [json.loads(x) for x in (out / "tasks.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(r["required_ops"] == ["rotate270"] for r in rows)
    assert main(["data", "validate", str(out / "tasks.jsonl"), "--images", "decode"]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(out / "tasks.jsonl"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    s = stats[str(out / "tasks.jsonl")]
    assert s["count"] == 5 and s["required_ops"] == {"rotate270": 5} and s["task_type"] == {"orientation": 5}


def test_bad_generator_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "visual_search", "-n", "1", "--out", str(tmp_path), "--set", "min_areafrac=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key(s) min_areafrac" in err and "min_area_frac" in err


def test_validate_reports_file_line_field_and_skip_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.png").write_bytes((FIX / "mvtoolbench/images/0001.png").read_bytes())
    good = {"id": "a", "images": ["a.png"], "question": "q", "answer": "x", "answer_type": "text"}
    bad = {**good, "id": "b", "images": ["missing.png"]}
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    assert main(["data", "validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert f"{f}:2: images[0]: image not found: {tmp_path / 'missing.png'}" in err
    assert main(["data", "validate", str(f), "--skip-invalid", "--rejects", str(tmp_path / "rej.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "1 valid task(s), 1 rejected" in out and (tmp_path / "rej.jsonl").exists()


def test_convert_benchmark_with_transforms_and_to_hf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vstar.jsonl"
    assert main(["data", "convert", "vstar", str(FIX / "vstar_bench"), "--out", str(out), "--transforms", "flip_h",
                 "--no-progress"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["vstar-direct_attributes-0", "vstar-direct_attributes-0-flip_h",
                                       "vstar-relative_position-115", "vstar-relative_position-115-flip_h"]
    assert rows[1]["required_ops"] == ["flip_h", "crop"]
    assert main(["data", "convert", "tasks", str(out), "--to-hf", str(tmp_path / "hf"), "--no-progress"]) == 0
    assert (tmp_path / "hf" / "dataset_info.json").exists()
    assert main(["data", "convert", "hrbench", str(FIX / "hrbench"), "--out", str(tmp_path / "h.jsonl"),
                 "--option", "version=8k", "--no-progress"]) == 0
    assert len((tmp_path / "h.jsonl").read_text().splitlines()) == 2
    assert main(["data", "convert", "hrbench", str(FIX / "hrbench"), "--out", str(tmp_path / "h2.jsonl")]) == 2
    assert "pass version=4k or version=8k" in capsys.readouterr().err


def test_stats_report_target_size_and_legibility_at_max_pixels(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vs"
    assert main(["data", "synth", "visual_search", "-n", "3", "--out", str(out), "--workers", "1", "--no-progress",
                 "--set", "min_side=1000", "--set", "max_side=1400", "--set", "max_pixels=300000"]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(out / "tasks.jsonl"), "--json", "--max-pixels", "300000"]) == 0
    s = json.loads(capsys.readouterr().out)[str(out / "tasks.jsonl")]
    assert s["max_pixels"] == 300000 and s["with_evidence_measured"] == 3
    assert 0 < s["target_area_pct"]["min"] <= s["target_area_pct"]["max"] < 0.1  # percent of the image
    assert s["needs_crop_to_read"] == 3 and s["legible_without_crop"] == 0  # the generator kept only those
    # at a resolution 64x larger in pixels nothing is downscaled: the targets are seen at their size in the file
    assert main(["data", "stats", str(out / "tasks.jsonl"), "--json", "--max-pixels", str(300000 * 64)]) == 0
    big = json.loads(capsys.readouterr().out)[str(out / "tasks.jsonl")]
    rows = [json.loads(x) for x in (out / "tasks.jsonl").read_text().splitlines()]
    basis = sorted(r["metadata"]["target"]["seen_basis_px"] for r in rows)
    assert big["target_seen_px"]["min"] == pytest.approx(basis[0], rel=0.05)
    assert big["target_seen_px"]["max"] == pytest.approx(basis[-1], rel=0.05)
    assert big["target_seen_px"]["max"] > s["target_seen_px"]["max"]
