"""`codevl eval` over the new benchmarks' published files: a scripted policy answers, the benchmark's own rule
scores, and the summary reports it (hand-counted), including ChartQAPro's partial credit as `mean_score`."""

from __future__ import annotations

import json
from pathlib import Path

from rollout.protocols import get_protocol
from tests.data.test_mmmu import _mmmu
from tests.data.test_visualpuzzles_chartqapro import _chartqapro_rows, _chartqapro_schema
from tests.data.bench_fixtures import write_parquet

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, benchmark: str, path: Path, answers: dict[str, str]) -> dict:
    from train.cli import main

    p = get_protocol("codevl")
    script = tmp_path / f"{benchmark}_script.json"
    script.write_text(json.dumps({tid: [p.format_assistant("", answer=a)] for tid, a in answers.items()}))
    out = tmp_path / f"{benchmark}_run"
    rc = main(["eval", "--config", str(ROOT / "configs/eval/scripted_fixture.yaml"), "--no-progress",
               f"output_dir={out}", "model.engine=scripted", f"model.script={script}", "model.name=scripted",
               "data.tasks=null", f"data.benchmark={benchmark}", f"data.path={path}",
               f"data.image_dir={tmp_path / 'img'}", "max_concurrent=4"])
    assert rc == 0
    return json.loads((out / "summary.json").read_text())


def test_codevl_eval_scores_mmmu_and_chartqapro_by_their_rules(tmp_path: Path) -> None:
    mmmu = _run(tmp_path, "mmmu", _mmmu(tmp_path / "MMMU"), {
        "mmmu-validation_Accounting_1": "B",  # right letter
        "mmmu-validation_Accounting_2": "(C)",  # wrong letter
        "mmmu-validation_Math_15": "x = 3.429",  # the second acceptable answer
        "mmmu-validation_Math_16": "31",  # wrong number
    })
    acc = mmmu["accuracy"]
    assert acc["overall"] == {"n": 4, "correct": 2, "accuracy": 0.5}
    assert {k: (v["correct"], v["n"]) for k, v in acc["by_category"].items()} == {"Accounting": (1, 2), "Math": (1, 2)}
    write_parquet(tmp_path / "ChartQAPro/data/test-00000-of-00001.parquet", _chartqapro_rows(), _chartqapro_schema())
    chart = _run(tmp_path, "chartqapro", tmp_path / "ChartQAPro", {
        "chartqapro-0": "12.6",  # within 5% of 12.5: 1
        "chartqapro-1": "2017",  # a year, compared exactly: 0
        "chartqapro-2": "['France', 'Italy']",  # one of two list elements: 0.5
        "chartqapro-3": "b",  # 1
    })
    overall = chart["accuracy"]["overall"]
    # full-score samples 2 of 4; the published figure is the mean score (1 + 0 + 0.5 + 1) / 4 = 0.625
    assert (overall["correct"], overall["n"], overall["mean_score"]) == (2, 4, 0.625)


def test_eval_configs_of_the_benchmarks_load(tmp_path: Path) -> None:
    from data.loaders import LOADERS
    from train.config import load_config
    from train.config.eval import EvalConfig

    names = ["mmmu", "mathverse", "mathvision", "visualpuzzles", "chartqapro_t"]
    for name in names:
        cfg = load_config(EvalConfig, ROOT / f"configs/eval/{name}.yaml", [])
        assert cfg.data.benchmark in LOADERS and cfg.output_dir == f"runs/eval/{name}"
    assert load_config(EvalConfig, ROOT / "configs/eval/chartqapro_t.yaml", []).data.transforms == "all"


def test_converted_tasks_survive_the_task_file_checks(tmp_path: Path) -> None:
    """`codevl data convert` output of the new loaders passes the task file's full validation (images decode)."""
    from data import read_tasks, write_tasks
    from data.loaders import load_benchmark

    write_parquet(tmp_path / "ChartQAPro/data/test-00000-of-00001.parquet", _chartqapro_rows(), _chartqapro_schema())
    tasks = [*load_benchmark("mmmu", _mmmu(tmp_path / "MMMU"), image_dir=tmp_path / "img"),
             *load_benchmark("chartqapro", tmp_path / "ChartQAPro", image_dir=tmp_path / "img", transforms="flip_h")]
    write_tasks(tmp_path / "out.jsonl", tasks)
    back = read_tasks(tmp_path / "out.jsonl", image_check="decode")
    assert [t.model_dump(exclude={"images"}) for t in back] == [t.model_dump(exclude={"images"}) for t in tasks]
