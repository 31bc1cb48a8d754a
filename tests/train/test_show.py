"""`codevl show`: saved trajectories in the terminal, by id or as a list; errors name the file, exit 1 or 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.train.eval_fixture import eval_run  # noqa: F401 - the shared evaluation-run fixture
from train.cli import main


def test_show_one_trajectory_by_id_with_its_code_result_and_reward(eval_run: Path, capsys) -> None:
    assert main(["show", str(eval_run / "trajectories/eval.jsonl"), "--id", "t0#0"]) == 0
    out = capsys.readouterr().out
    assert "trajectory t0#0" in out and "show(image_clue_0.crop((10, 10, 50, 40)))" in out
    assert "sandbox: ok" in out and "ops: crop" in out and "answer: 'cat'" in out and "reward: total" in out
    assert "t1#0" not in out


def test_show_list_reads_a_run_directory(eval_run: Path, capsys) -> None:
    assert main(["show", str(eval_run), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split("\t")[0] for line in lines) == [f"t{i}#0" for i in range(6)]
    t4 = next(line for line in lines if line.startswith("t4#0"))
    assert "answered" in t4 and "steps=1" in t4 and "answer='A'" in t4


@pytest.mark.parametrize(("target", "code", "fragment"), [
    ("missing.jsonl", 2, "does not exist"),
    ("notes.txt", 2, "is not a .jsonl trajectory file"),
    ("bad.jsonl", 1, "bad.jsonl:2: not a valid trajectory"),
    ("empty_dir", 2, "no trajectories in"),
    ("no_images/t.jsonl", 1, "t.jsonl:1: not a valid trajectory: image"),
])
def test_show_errors_name_the_file_without_a_traceback(eval_run: Path, tmp_path: Path, capsys, target: str,
                                                       code: int, fragment: str) -> None:
    good = (eval_run / "trajectories/eval.jsonl").read_text().splitlines()[0]
    (tmp_path / "bad.jsonl").write_text(good + '\n{"schema": 1, "id": "x"}\n')
    (tmp_path / "images").symlink_to(eval_run / "trajectories/images")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_images/t.jsonl").write_text(good + "\n")
    assert main(["show", str(tmp_path / target)]) == code
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_show_unknown_id_exits_1(eval_run: Path, capsys) -> None:
    assert main(["show", str(eval_run), "--id", "nope#0"]) == 1
    assert "no trajectory with id nope#0" in capsys.readouterr().err
