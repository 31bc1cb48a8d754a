"""A six-task benchmark with hand-known outcomes under a scripted policy (real sandbox, real episode loop).

| task | category | transform | answer | script                                       | correct | steps | faithful  |
| ---- | -------- | --------- | ------ | -------------------------------------------- | ------- | ----- | --------- |
| t0   | ocr      | none      | cat    | crop the evidence box exactly, answer cat     | yes     | 1 ok  | yes       |
| t1   | ocr      | rotate90  | dog    | crop far from the evidence, answer dog        | yes     | 1 ok  | no        |
| t2   | count    |           | 3      | answer 4                                      | no      | 0     | n/a       |
| t3   | count    |           | 5      | answer 5                                      | yes     | 0     | n/a       |
| t4   | color    |           | B      | code raising ZeroDivisionError, answer A      | no      | 1 err | n/a       |
| t5   | color    |           | blue   | a turn with neither code nor answer (stopped) | no      | 0     | n/a       |

Accuracy 3/6; ocr 2/2, count 1/2, color 0/2; transform none 1/1, rotate90 1/1; tool calls 3/6 = 0.5 per sample,
any call 3/6, code errors 1 of 3 blocks; faithfulness (t0, t1 have evidence, both correct): faithful_correct 1,
unfaithful_correct 1, P(correct | faithful) = 1, P(faithful | correct) = 1/2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rollout.protocols import get_protocol
from rollout.task import Task

EVIDENCE = (10, 10, 50, 40)


def _image(path: Path, seed: int) -> str:
    """A light gradient with a dark block where the evidence box is (distinct per task by `seed`)."""
    yy, xx = np.mgrid[0:96, 0:128]
    arr = np.stack([150 + xx, 170 + yy, np.full_like(xx, 200 - 10 * seed)], axis=-1).clip(0, 255).astype(np.uint8)
    x1, y1, x2, y2 = EVIDENCE
    arr[y1:y2, x1:x2] = (40, 40 + 20 * seed, 90)
    Image.fromarray(arr).save(path)
    return path.name


def make_benchmark(root: Path) -> tuple[Path, Path]:
    """Write tasks.jsonl (with images) and script.json under `root`; returns their paths."""
    from data import write_tasks

    root.mkdir(parents=True, exist_ok=True)
    p = get_protocol("codevl")
    ev = [{"box": list(EVIDENCE), "label": "word"}]
    specs = [
        ("t0", "ocr", "none", "cat", "text", None, ev),
        ("t1", "ocr", "rotate90", "dog", "text", None, ev),
        ("t2", "count", None, 3, "number", None, []),
        ("t3", "count", None, 5, "number", None, []),
        ("t4", "color", None, "B", "choice", ["red", "green"], []),
        ("t5", "color", None, "blue", "text", None, []),
    ]
    tasks = []
    for i, (tid, cat, transform, answer, atype, choices, evidence) in enumerate(specs):
        meta = {"category": cat, **({"transform": transform} if transform else {})}
        q = "Which word is written?" if cat == "ocr" else f"Question {tid}?"
        if choices:
            q += "\n(A) red\n(B) green"
        tasks.append(Task(id=tid, images=[str(root / _image(root / f"{tid}.png", i))], question=q, answer=answer,
                          answer_type=atype, choices=choices, evidence=evidence, source="fixture", split="test",
                          metadata=meta))
    tasks_path = root / "tasks.jsonl"
    write_tasks(tasks_path, tasks)
    x1, y1, x2, y2 = EVIDENCE
    script = {
        "t0": [p.format_assistant("Zoom in.", code=f"show(image_clue_0.crop(({x1}, {y1}, {x2}, {y2})))"),
               p.format_assistant("It says cat.", answer="cat")],
        "t1": [p.format_assistant("Zoom in.", code="show(image_clue_0.crop((80, 60, 120, 90)))"),
               p.format_assistant("", answer="dog")],
        "t2": [p.format_assistant("", answer="4")],
        "t3": [p.format_assistant("", answer="5")],
        "t4": [p.format_assistant("Try.", code="print(1 / 0)"), p.format_assistant("", answer="A")],
        "t5": ["I cannot tell."],
    }
    script_path = root / "script.json"
    script_path.write_text(json.dumps(script))
    return tasks_path, script_path


def eval_overrides(tasks: Path, script: Path, out: Path) -> list[str]:
    """Dotted overrides of an eval config that runs the scripted policy on the fixture."""
    return [f"output_dir={out}", "model.engine=scripted", f"model.script={script}", "model.name=scripted",
            f"data.tasks={tasks}", "data.name=fixture", "max_concurrent=4"]


@pytest.fixture(scope="session")
def eval_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished evaluation run directory of this benchmark under its scripted policy (real sandbox), scored with
    the CodeVision reward set so that episodes carry reward breakdowns. Test modules import it to use it."""
    from train.config import load_config
    from train.config.eval import EvalConfig
    from train.eval import evaluate

    root = tmp_path_factory.mktemp("eval_run")
    tasks, script = make_benchmark(root / "bench")
    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(EvalConfig, repo / "configs/eval/scripted_fixture.yaml",
                      [*eval_overrides(tasks, script, root / "run"),
                       f"rewards={repo / 'configs/rewards/codevision.yaml'}"])
    evaluate(cfg)
    return root / "run"
