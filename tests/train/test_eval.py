"""`codevl eval` on a fixture benchmark with hand-known outcomes (tests/train/eval_fixture.py), in the real sandbox:
accuracy and its breakdowns, tool use, the faithfulness table, the VLMEvalKit predictions file, resume after a
torn write and after a kill, Ctrl-C, `eval compare`, errors; and one run of the real tiny model."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.train.eval_fixture import make_benchmark, eval_overrides
from train.cli import main
from train.config import ConfigError, load_config
from train.config.eval import EvalConfig
from train.eval import evaluate, format_comparison, read_records
from train.eval.runner import check_resume

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_benchmark(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def pool():  # noqa: ANN201 - a sandbox pool shared by the module's in-process runs
    from sandbox import SandboxConfig, SandboxPool

    p = SandboxPool(SandboxConfig())
    yield p
    p.close()


def _cfg(bench: tuple[Path, Path], out: Path, *extra: str) -> EvalConfig:
    return load_config(EvalConfig, ROOT / "configs/eval/scripted_fixture.yaml", [*eval_overrides(*bench, out), *extra])


def test_accuracy_tools_and_faithfulness_match_the_hand_computed_table(bench, pool, tmp_path: Path) -> None:
    out = tmp_path / "run"
    s = evaluate(_cfg(bench, out), pool=pool)
    acc = s["accuracy"]
    assert acc["overall"] == {"n": 6, "correct": 3, "accuracy": 0.5}  # t0, t1, t3 right
    assert {k: (v["correct"], v["n"]) for k, v in acc["by_category"].items()} == {
        "ocr": (2, 2), "count": (1, 2), "color": (0, 2)}
    assert {k: (v["correct"], v["n"]) for k, v in acc["by_transform"].items()} == {"none": (1, 1), "rotate90": (1, 1)}
    t = s["tools"]
    assert t["calls_per_sample"] == 0.5 and t["any_call_rate"] == 0.5  # 3 blocks over 6 samples, 3 with a call
    assert t["executing_code_rate"] == pytest.approx(2 / 6, abs=1e-6)  # t0, t1 ran ok; t4's block raised
    assert t["answered_rate"] == pytest.approx(5 / 6, abs=1e-6)  # all but t5
    assert t["code_block_status"] == {"ok": 2, "error": 1} and t["code_error_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert t["ops_share_of_samples"] == {"crop": pytest.approx(2 / 6, abs=1e-6)}  # t0 and t1 cropped
    assert t["finish_reasons"] == {"answered": 5, "stopped": 1}
    f = s["faithfulness"]
    assert f["table"] == {"faithful_correct": 1, "faithful_wrong": 0, "unfaithful_correct": 1, "unfaithful_wrong": 0}
    assert f["p_correct_given_faithful"] == 1.0 and f["p_faithful_given_correct"] == 0.5
    assert s["samples"] == 6 and s["failed"] == 0 and s["missing"] == 0
    assert json.loads((out / "summary.json").read_text()) == s
    records = {r["task_id"]: r for r in read_records(out / "samples.jsonl")}
    assert records["t4"]["step_status"] == ["error"] and records["t4"]["prediction"] == "A"
    assert records["t0"]["trajectory"] == {"file": "trajectories/eval.jsonl", "id": "t0#0"}
    from rollout.trajectory import load_trajectories

    assert sorted(t.id for t in load_trajectories(out / "trajectories/eval.jsonl")) == [f"t{i}#0" for i in range(6)]


def test_predictions_file_is_vlmevalkit_result_format(bench, pool, tmp_path: Path) -> None:
    out = tmp_path / "run"
    s = evaluate(_cfg(bench, out), pool=pool)
    path = out / s["predictions"]
    assert path.name == "scripted_fixture.tsv"  # {model}_{dataset}.tsv, VLMEvalKit's get_pred_file_path
    text = path.read_text()
    assert text.startswith('"index"\t"question"\t"answer"')  # QUOTE_ALL, as VLMEvalKit's dump_tsv
    rows = list(csv.DictReader(path.open(newline=""), delimiter="\t"))
    assert [r["index"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    assert [r["prediction"] for r in rows] == ["cat", "dog", "4", "5", "A", "I cannot tell."]
    assert rows[2]["answer"] == "3" and (rows[4]["A"], rows[4]["B"]) == ("red", "green")
    assert rows[0]["category"] == "ocr" and list(rows[0])[-1] == "prediction"


def test_same_seed_same_samples_and_resume_after_a_torn_write_reruns_only_the_rest(bench, pool, tmp_path: Path) -> None:
    full = tmp_path / "full"
    evaluate(_cfg(bench, full), pool=pool)
    part = tmp_path / "part"
    evaluate(_cfg(bench, part, "data.limit=3"), pool=pool)  # t0..t2 finished
    lines = (part / "samples.jsonl").read_bytes()
    (part / "samples.jsonl").write_bytes(lines + b'{"key": "t3#0", "task_id": "t3", "sampl')  # killed mid-write
    kept = {r["key"]: r for r in read_records(part / "samples.jsonl")}
    assert sorted(kept) == ["t0#0", "t1#0", "t2#0"]

    class Counting:  # the scripted policy, counting which tasks it is asked about
        def __init__(self) -> None:
            from rollout.scripted import ScriptedPolicy

            self.inner = ScriptedPolicy(json.loads(bench[1].read_text()))
            self.tasks: list[str] = []

        async def chat(self, messages, images, sampling, context=None):
            self.tasks.append(context["task_id"])
            return await self.inner.chat(messages, images, sampling, context)

    engine = Counting()
    s = evaluate(_cfg(bench, part), engine=engine, pool=pool)
    assert sorted(set(engine.tasks)) == ["t3", "t4", "t5"]  # t0..t2 were not rerun
    assert (part / "samples.jsonl").read_bytes().startswith(lines) and s["samples"] == 6
    strip = lambda r: {k: v for k, v in r.items() if k != "timing"}  # noqa: E731
    a = {r["key"]: strip(r) for r in read_records(full / "samples.jsonl")}
    b = {r["key"]: strip(r) for r in read_records(part / "samples.jsonl")}
    assert a == b  # same seed: same samples, interrupted or not


def test_a_killed_run_resumes_without_rerunning_finished_samples_and_ctrl_c_says_what_was_kept(
        bench, tmp_path: Path) -> None:
    script = json.loads(bench[1].read_text())
    slow = tmp_path / "script.json"
    script["t3"] = ["<code>\n```python\nimport time\ntime.sleep(60)\n```\n</code>"]
    slow.write_text(json.dumps(script))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start(out: Path) -> subprocess.Popen:
        args = [sys.executable, "-m", "train.cli", "eval", "--config", str(ROOT / "configs/eval/scripted_fixture.yaml"),
                *eval_overrides(bench[0], slow, out), "max_concurrent=1", "limits.code_timeout_s=120", "--no-progress"]
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    def wait_for(out: Path, n: int, proc: subprocess.Popen) -> None:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            if (out / "samples.jsonl").exists() and len(read_records(out / "samples.jsonl")) >= n:
                time.sleep(0.5)  # t3's block is now sleeping in the sandbox
                return
            time.sleep(0.1)
        raise AssertionError(f"run did not reach {n} samples: {proc.communicate()}")

    out = tmp_path / "killed"
    proc = start(out)
    wait_for(out, 3, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = (out / "samples.jsonl").read_bytes()
    assert sorted(r["key"] for r in read_records(out / "samples.jsonl")) == ["t0#0", "t1#0", "t2#0"]

    slow.write_text(bench[1].read_text())  # t3 answers at once now: if t0..t2 ran again, they would be appended
    assert main(["eval", "--config", str(ROOT / "configs/eval/scripted_fixture.yaml"),
                 *eval_overrides(bench[0], slow, out), "limits.code_timeout_s=120", "--no-progress"]) == 0
    after = (out / "samples.jsonl").read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 6  # 3 kept + 3 new, nothing rerun

    script["t3"] = ["<code>\n```python\nimport time\ntime.sleep(60)\n```\n</code>"]
    slow.write_text(json.dumps(script))
    out2 = tmp_path / "interrupted"
    proc = start(out2)
    wait_for(out2, 3, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; 3 finished sample(s) are kept in" in err
    assert str(out2 / "samples.jsonl") in err


def test_compare_shows_both_runs_and_the_changed_samples(bench, pool, tmp_path: Path, capsys) -> None:
    evaluate(_cfg(bench, tmp_path / "a"), pool=pool)
    script = json.loads(bench[1].read_text())
    script["t2"] = ["<answer>3</answer>"]  # fixed
    script["t0"] = ["<answer>cow</answer>"]  # broken
    path = tmp_path / "script_b.json"
    path.write_text(json.dumps(script))
    evaluate(_cfg(bench, tmp_path / "b", f"model.script={path}"), pool=pool)
    text = format_comparison(tmp_path / "a", tmp_path / "b")
    acc = next(line for line in text.splitlines() if line.startswith("accuracy"))
    assert acc.split()[1:] == ["50.0%", "50.0%", "+0.0"]  # 3/6 both: one fixed, one broken
    assert "wrong -> right 1, right -> wrong 1" in text and "fixed: t2#0" in text and "broken: t0#0" in text
    cat = next(line for line in text.splitlines() if "category count" in line)
    assert cat.split()[2:4] == ["50.0%", "100.0%"]
    assert main(["eval", "compare", str(tmp_path / "a"), str(tmp_path / "nope")]) == 2
    assert "nope is not a directory" in capsys.readouterr().err


def test_resume_refuses_a_run_made_with_other_settings(bench, pool, tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(_cfg(bench, out, "data.limit=2"), pool=pool)
    check_resume(_cfg(bench, out, "data.limit=5"), out)  # more tasks: fine, the finished ones stay valid
    from train.eval import EvalSetupError

    with pytest.raises(EvalSetupError, match=r"sampling.temperature: 0.0 -> 0.5"):
        check_resume(_cfg(bench, out, "sampling.temperature=0.5"), out)


def test_config_and_path_errors_exit_2_and_a_bad_task_file_exits_1(bench, tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError, match="'data' is required"):
        load_config(EvalConfig, None, ["model.engine=scripted", "model.script=x.json"])
    with pytest.raises(ConfigError, match="model.name_or_path"):
        load_config(EvalConfig, None, ["data.tasks=t.jsonl", "model.engine=hf"])
    with pytest.raises(ConfigError, match="sampling.temprature"):
        load_config(EvalConfig, None, ["data.tasks=t.jsonl", "model.name_or_path=m", "sampling.temprature=1"])
    assert main(["eval", "--config", str(ROOT / "configs/eval/scripted_fixture.yaml"),
                 *eval_overrides(tmp_path / "missing.jsonl", bench[1], tmp_path / "o")]) == 2
    assert "missing.jsonl not found" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    assert main(["eval", "--config", str(ROOT / "configs/eval/scripted_fixture.yaml"),
                 *eval_overrides(bad, bench[1], tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:1" in err and "Traceback" not in err
    assert main(["eval", "--config", str(ROOT / "configs/eval/scripted_fixture.yaml"),
                 *eval_overrides(bench[0], tmp_path / "nope.json", tmp_path / "o")]) == 2
    assert "nope.json not found" in capsys.readouterr().err


def test_tiny_model_eval_is_deterministic_by_seed(bench, pool, tmp_path: Path) -> None:
    """The real tiny model through the HF engine (it cannot answer; what is checked is the machinery)."""
    from train.model.tiny import build_tiny_model

    model_dir = build_tiny_model("qwen2_5_vl", tmp_path / "tiny", seed=0)
    over = [f"data.tasks={bench[0]}", "model.engine=hf", f"model.name_or_path={model_dir}", "model.device=cpu",
            "model.dtype=float32", "model.attn_implementation=eager", "data.limit=2", "sampling.temperature=1.0",
            "limits.max_turns=2", "limits.max_new_tokens_per_turn=12", "limits.max_total_tokens=2048", "seed=7"]
    runs = []
    for name in ("a", "b"):
        cfg = load_config(EvalConfig, None, [*over, f"output_dir={tmp_path / name}"])
        s = evaluate(cfg, pool=pool)
        assert s["samples"] == 2 and s["failed"] == 0 and s["accuracy"]["overall"]["n"] == 2
        assert s["response"]["sampled_tokens_mean"] > 0
        runs.append({r["key"]: (r["prediction"], r["last_message"], r["sampled_tokens"])
                     for r in read_records(tmp_path / name / "samples.jsonl")})
    assert runs[0] == runs[1]


def test_a_benchmark_through_its_loader_with_transformed_copies(pool, tmp_path: Path) -> None:
    """OCRBench's fixture (2 items) plus rotate90 copies; the policy always answers "Emerald". OCRBench counts an
    answer that contains a reference: item 0 (Emerald) is right, item 900 (a formula) wrong, in both orientations:
    2/4; per transform 1/2 each; per OCRBench type 2/2 and 0/2."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["<answer>Emerald</answer>"]))
    cfg = load_config(EvalConfig, None, [
        f"output_dir={tmp_path / 'run'}", "model.engine=scripted", f"model.script={script}", "data.benchmark=ocrbench",
        f"data.path={ROOT / 'tests/data/fixtures/ocrbench'}", "data.transforms=[rotate90]",
        f"data.image_dir={tmp_path / 'images'}"])
    s = evaluate(cfg, pool=pool)
    assert s["dataset"] == "ocrbench" and s["predictions"] == "script_ocrbench.tsv"
    assert s["accuracy"]["overall"] == {"n": 4, "correct": 2, "accuracy": 0.5}
    assert {k: (v["correct"], v["n"]) for k, v in s["accuracy"]["by_transform"].items()} == {
        "none": (1, 2), "rotate90": (1, 2)}
    assert {k: (v["correct"], v["n"]) for k, v in s["accuracy"]["by_category"].items()} == {
        "Handwritten Mathematical Expression Recognition": (0, 2), "Regular Text Recognition": (2, 2)}


def test_a_generated_held_out_split(pool, tmp_path: Path) -> None:
    """Three orientation tasks generated under seed 1000; the policy always answers PENCIL, so the number correct
    is the number of generated tasks whose answer is PENCIL (counted here from the generated file)."""
    from data import read_tasks

    script = tmp_path / "script.json"
    script.write_text(json.dumps(["<answer>PENCIL</answer>"]))
    over = [f"output_dir={tmp_path / 'run'}", "model.engine=scripted", f"model.script={script}",
            "data.synthetic=[{generator: orientation, n: 3, seed: 1000, config: {min_side: 256, max_side: 320}}]"]
    s = evaluate(load_config(EvalConfig, None, over), pool=pool)
    tasks = read_tasks(tmp_path / "run/data/orientation_seed1000/tasks.jsonl")
    assert s["dataset"] == "synthetic_orientation" and s["samples"] == 3 == len(tasks)
    expected = sum(str(t.answer).strip().lower() == "pencil" for t in tasks)
    assert s["accuracy"]["overall"]["correct"] == expected and s["accuracy"]["by_category"]["orientation"]["n"] == 3
    again = evaluate(load_config(EvalConfig, None, over), pool=pool)  # regenerated identically: nothing rerun
    assert again["this_invocation"]["samples_run"] == 0 and again["accuracy"] == s["accuracy"]
    with pytest.raises(ConfigError, match="unknown generator 'orientaton'"):
        load_config(EvalConfig, None, [*over[:3], "data.synthetic=[{generator: orientaton}]"])


@pytest.mark.parametrize(("override", "fragment"), [
    ("rewards=configs/rewards/nope.yaml", "reward set file not found"),
    ("model.script=/nonexistent/s.json", "s.json not found"),
    ("data.tasks=/nonexistent/t.jsonl", "t.jsonl not found"),
])
def test_dry_run_checks_what_a_run_would_need_before_any_work(bench, tmp_path: Path, capsys, override: str,
                                                              fragment: str) -> None:
    base = ["eval", "--config", str(ROOT / "configs/eval/scripted_fixture.yaml"), *eval_overrides(*bench, tmp_path)]
    assert main([*base, "--dry-run"]) == 0 and "engine: scripted" in capsys.readouterr().out
    assert main([*base, override, "--dry-run"]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "samples.jsonl").exists()
    # hf with a local path that is not a model: refused before any model is loaded
    assert main(["eval", "--config", str(ROOT / "configs/eval/tiny_synthetic.yaml"), "--dry-run",
                 f"model.name_or_path={tmp_path}"]) == 2
    assert "is not a model directory" in capsys.readouterr().err


def test_engine_failures_are_counted_apart_and_rerun_on_resume(bench, pool, tmp_path: Path, capsys) -> None:
    """t3's generation fails: a failed sample, not a wrong answer. It is left out of accuracy (of the other five,
    t0 and t1 are right: 2/5), marked in the predictions file, and rerun on resume (then 3/6 as in the table)."""
    from rollout.engines.base import EngineError
    from rollout.scripted import ScriptedPolicy

    class Flaky(ScriptedPolicy):
        fail = True

        async def chat(self, messages, images, sampling, context=None):
            if self.fail and context["task_id"] == "t3":
                raise EngineError("backend unavailable")
            return await super().chat(messages, images, sampling, context)

    engine = Flaky(json.loads(bench[1].read_text()))
    out = tmp_path / "run"
    s = evaluate(_cfg(bench, out), engine=engine, pool=pool)
    assert s["failed"] == 1 and s["accuracy"]["overall"] == {"n": 5, "correct": 2, "accuracy": 0.4}
    assert s["failures"][0]["key"] == "t3#0" and "backend unavailable" in s["failures"][0]["error"]
    rows = list(csv.DictReader((out / s["predictions"]).open(newline=""), delimiter="\t"))
    assert rows[3]["prediction"].startswith("Failed to obtain answer: engine_error")
    engine.fail = False
    calls_before = engine.calls
    s = evaluate(_cfg(bench, out), engine=engine, pool=pool)
    assert engine.calls - calls_before == 1  # only t3 ran again (one answer turn)
    assert s["failed"] == 0 and s["accuracy"]["overall"] == {"n": 6, "correct": 3, "accuracy": 0.5}
