"""Curation with a scripted teacher in the real sandbox: what is kept and why the rest is dropped; resuming after an
interruption without running anything twice; the CLI with the oracle teacher."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from data.curate import CurationRules, EngineTeacher, curate
from data.generators import get_generator
from data.oracle import answer_text, oracle_script
from data.task_file import write_tasks
from rollout.protocols import get_protocol
from rollout.scripted import ScriptedPolicy
from rollout.task import Task
from rollout.trajectory import Trajectory

PROTOCOL = get_protocol("codevl")



def _msg(text: str, code: str | None = None, answer: str | None = None) -> str:
    return PROTOCOL.format_assistant(text, code=code, answer=answer)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Task], dict[str, list[str]], dict[str, str]]:
    """Tasks (copies of generated ones under new ids), a script per task, and the expected first drop reason."""
    root = tmp_path_factory.mktemp("curate_tasks")
    vs_gen = get_generator("visual_search", {"min_side": 640, "max_side": 800})
    vs = vs_gen.write(vs_gen.make(0, seed=3), "vs", root)
    or_gen = get_generator("orientation", {"transforms": ["rotate90"], "small_text_share": 0})
    orient = or_gen.write(or_gen.make(0, seed=3), "or", root)
    sym_gen = get_generator("symbolic", {"kinds": ["nested_squares"]})
    sym = sym_gen.write(sym_gen.make(0, seed=3), "sym", root)

    good = oracle_script(vs, "single_tool").render(PROTOCOL)
    x1, y1, x2, y2 = (int(v) for v in vs.evidence[0].box)
    w, h = vs.metadata["image_size"]
    far = (0, 0, 40, 40) if x1 > w / 2 else (w - 40, h - 40, w, h)
    wrong = "B" if vs.answer != "B" else "C"
    if vs.answer_type != "choice":
        wrong = "definitely-not-it"
    scripts = {
        "vs-good": good,
        "vs-wrong": [good[0], _msg("It reads differently.", answer=wrong)],
        "vs-offtarget": [_msg("Look here.", code=f"c = image_clue_0.crop({far})\nshow(c)"),
                         _msg("Found it.", answer=answer_text(vs))],
        "vs-noanswer": [good[0], "I am not sure what this is."],
        "vs-failed-end": [*good[:-1], _msg("Zoom more.", code="c = detail.crop((0, 0, 10, 10)\nshow(c)"),
                          _msg("So.", answer=answer_text(vs))],
        "or-missing": [_msg("I can read it sideways.", answer=answer_text(orient))],
        "sym-spurious": [_msg("Turn it.", code="r = image_clue_0.rotate(90, expand=True)\nshow(r)"),
                         _msg("Counted.", answer=answer_text(sym))],
        "or-good": oracle_script(orient, "single_tool").render(PROTOCOL),
    }
    expected = {"vs-good": "", "vs-wrong": "wrong_answer", "vs-offtarget": "crop_iou",
                "vs-noanswer": "not_answered:stopped", "vs-failed-end": "unrecovered_error",
                "or-missing": "required_ops", "sym-spurious": "spurious_orientation", "or-good": ""}
    base = {"vs": vs, "or": orient, "sym": sym}
    tasks = [base[k.split("-")[0]].model_copy(update={"id": k}) for k in scripts]
    return tasks, scripts, expected


class _CountingTeacher(EngineTeacher):
    """Records which tasks it ran; optionally fails on its n-th batch (a simulated crash)."""

    def __init__(self, script: dict[str, list[str]], *, fail_on_batch: int | None = None, **kw: Any) -> None:
        super().__init__(ScriptedPolicy(script), name="scripted", **kw)
        self.ran: list[str] = []
        self.batches = 0
        self.fail_on_batch = fail_on_batch

    async def run(self, tasks: Sequence[Task], **kw: Any) -> list[Trajectory]:
        self.batches += 1
        if self.fail_on_batch is not None and self.batches == self.fail_on_batch:
            raise RuntimeError("teacher crashed")
        self.ran += [t.id for t in tasks]
        return await super().run(tasks, **kw)


def test_keeps_good_trajectories_and_says_why_the_rest_was_dropped(pool: Any, cases: Any, tmp_path: Path) -> None:
    tasks, scripts, expected = cases
    teacher = _CountingTeacher(scripts, samples_per_task=2)
    report = curate(tasks, teacher, tmp_path, protocol=PROTOCOL, pool=pool, batch_size=3, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * len(tasks) == report.episodes
    for r in rows:
        reasons = r["metadata"]["curation"]["reasons"]
        want = expected[r["task"]["id"]]
        assert (reasons[0] if reasons else "") == want, (r["task"]["id"], reasons)
        assert r["reward"]["components"]["answer_accuracy"]["status"] == "ok"  # scored by the reward set
    kept = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert sorted(k["task"]["id"] for k in kept) == ["or-good", "vs-good"]  # one per task: the twin is a duplicate
    assert report.passed == 4 and report.kept == 2 and report.selection_drops["duplicate"] == 2
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["dropped_by_first_failed_check"]["wrong_answer"] == 2 and saved["kept"] == 2
    from rollout.trajectory import load_trajectories

    assert len(load_trajectories(tmp_path / "sft.jsonl")) == 2  # a valid trajectory file (SFT data)


def test_resume_after_interruption_runs_nothing_twice(pool: Any, cases: Any, tmp_path: Path) -> None:
    tasks, scripts, _ = cases
    crashing = _CountingTeacher(scripts, fail_on_batch=3)
    with pytest.raises(RuntimeError, match="teacher crashed"):
        curate(tasks, crashing, tmp_path, protocol=PROTOCOL, pool=pool, batch_size=2, progress=False)
    assert crashing.ran == [t.id for t in tasks[:4]]
    # a torn write of the batch that was cut off: half a line, and an episode whose task was never committed
    with (tmp_path / "episodes.jsonl").open("a") as f:
        f.write(json.dumps({"task": {"id": tasks[5].id}, "metadata": {}}) + "\n" + '{"schema": 1, "task": {"id"')
    resumed = _CountingTeacher(scripts)
    report = curate(tasks, resumed, tmp_path, protocol=PROTOCOL, pool=pool, batch_size=2, progress=False)
    assert resumed.ran == [t.id for t in tasks[4:]]  # only what was not committed
    assert report.tasks_done_before == 4 and report.episodes == len(tasks)
    ids = [json.loads(x)["task"]["id"] for x in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(t.id for t in tasks)
    again = _CountingTeacher(scripts)
    curate(tasks, again, tmp_path, protocol=PROTOCOL, pool=pool, batch_size=2, progress=False)
    assert again.ran == []
    with pytest.raises(ValueError, match="was started with other settings.*rules"):
        curate(tasks, again, tmp_path, protocol=PROTOCOL, pool=pool, rules=CurationRules(min_crop_iou=0.5),
               progress=False)


def test_cli_curate_with_the_oracle_teacher(pool: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    del pool  # the CLI makes its own; the fixture skips while the sandbox is missing
    from train.cli import main

    root = tmp_path / "tasks"
    g = get_generator("orientation")
    s = get_generator("symbolic")
    tasks = [g.write(g.make(i, seed=1), g.task_id(1, i), root / "images") for i in range(2)]
    tasks += [s.write(s.make(0, seed=1), s.task_id(1, 0), root / "images")]
    write_tasks(root / "tasks.jsonl", tasks)
    out = tmp_path / "cur"
    assert main(["data", "curate", str(root / "tasks.jsonl"), "--out", str(out), "--teacher", "oracle",
                 "--balance-by", "variant", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "kept" in text and (out / "sft.jsonl").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["kept"] == report["passed_checks"] > 0 and not report["dropped_by_first_failed_check"]
    assert main(["data", "stats", str(out / "sft.jsonl")]) == 0
    assert "oracle_variant" in capsys.readouterr().out
