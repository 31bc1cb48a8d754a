"""Offline re-scoring: a saved run re-scored under the set used at rollout time reproduces the recorded scores
exactly; under another set it gives that set's scores; `codevl rescore` prints the per-component table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewards import RewardError, load_reward_set, reward_set_from_config
from rewards import judge as judge_module
from rewards.rescore import format_table, rescore, trajectory_files
from rollout.trajectory import load_trajectories, save_trajectories
from sandbox.result import ExecResult, ExecStatus
from tests.rewards.builders import crop, failed, ok, op, shown, task, trajectory, untraced
from tests.rewards.judge_server import JudgeServer
from train.cli import main as codevl

CODEVISION = "configs/rewards/codevision.yaml"


def rollouts(step: int) -> list:
    t = task(required=["rotate90", "crop"], tid=f"task{step}")
    rot = ok([op("rotate90")], [shown((0, 0, 200, 100), ["rotate90"])])
    untraced_step = ExecResult(ExecStatus.OK, images=[untraced()])
    g = f"step{step}/task{step}"
    trs = [trajectory(t, [("r", rot), ("c", crop((95, 35, 125, 65), chain=("rotate90", "crop")))], answer="B", tid=f"{g}#0", group=g),
           trajectory(t, [("x", failed()), ("c", crop((0, 0, 30, 30)))], answer="A", tid=f"{g}#1", group=g),
           trajectory(t, [], answer="C", tid=f"{g}#2", group=g),
           trajectory(t, [("r = image_clue_0.rotate(90, expand=True)\nshow(r.crop((40, 80, 60, 100)))", untraced_step)],
                      answer="B", tid=f"{g}#3", group=g)]
    for k, tr in enumerate(trs):
        tr.sample_index = k
    return trs


def make_run(root: Path, reward_path: str = CODEVISION) -> tuple[Path, list[dict]]:
    rs = load_reward_set(reward_path)
    recorded = []
    for step in range(2):
        trs = rollouts(step)
        rs.score(trs)  # at rollout time: recorded into Trajectory.reward
        recorded += [json.loads(json.dumps(t.reward)) for t in trs]
        save_trajectories(root / "trajectories" / f"step_{step:06d}.jsonl", trs)
    return root, recorded


def test_rescoring_with_the_same_set_reproduces_the_recorded_scores_exactly(tmp_path: Path) -> None:
    run, recorded = make_run(tmp_path / "run")
    summary = rescore(run, load_reward_set(CODEVISION), tmp_path / "out")
    assert [json.loads(json.dumps(b.to_dict())) for b in summary.breakdowns] == recorded  # exact, not approx
    written = [t.reward for f in sorted((tmp_path / "out").glob("*.jsonl")) for t in load_trajectories(f)]
    assert written == recorded
    assert [f.name for f in summary.out_files] == ["step_000000.jsonl", "step_000001.jsonl"]
    # the run used every kind of evidence: group component, step rewards, AST fallback, failed steps
    assert recorded[0]["components"]["codevision_suggested_tool"]["value"] > 0
    assert recorded[3]["components"]["codevision_must_use"]["steps"] == [1.0]  # from the code: rotate90 + IoU 1
    assert summary.recorded_totals == [r["total"] for r in recorded]


def test_rescoring_under_another_set(tmp_path: Path) -> None:
    run, recorded = make_run(tmp_path / "run")
    code = load_reward_set("configs/rewards/codevision_code.yaml")
    summary = rescore(run, code)  # default output: RUN/rescored/<set name>/
    assert summary.out_files[0].parent == run / "rescored" / "codevision_code"
    expected = code.score([t for f in trajectory_files(run) for t in load_trajectories(f)], record=False)
    assert [b.total for b in summary.breakdowns] == [b.total for b in expected]
    assert [b.total for b in summary.breakdowns] != [r["total"] for r in recorded]
    table = format_table(summary)
    assert "reward set 'codevision_code'" in table and "8 trajectories from 2 file(s)" in table
    assert "codevision_code_accuracy" in table and "recorded total" in table
    # the inputs are untouched
    assert [t.reward for t in load_trajectories(run / "trajectories" / "step_000000.jsonl")] == recorded[:4]


def test_single_file_and_bad_paths(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path / "run")
    one = run / "trajectories" / "step_000001.jsonl"
    summary = rescore(one, load_reward_set("configs/rewards/tapo.yaml"), write=False)
    assert len(summary.breakdowns) == 4 and summary.out_files == []
    with pytest.raises(RewardError, match="no trajectories in"):
        rescore(tmp_path, load_reward_set("configs/rewards/tapo.yaml"))
    with pytest.raises(RewardError, match="where the inputs are"):
        rescore(run, load_reward_set("configs/rewards/tapo.yaml"), run / "trajectories")


def test_judge_scores_are_reproduced_from_the_cache(tmp_path: Path) -> None:
    with JudgeServer() as server:
        server.responder = lambda body: (200, "SCORE: 0.5")
        cfg = {"base_url": server.url, "model": "j", "backoff_s": 0.0, "max_retries": 0,
               "cache_dir": str(tmp_path / "judge_cache")}
        path = tmp_path / "judge.yaml"
        path.write_text(json.dumps({"name": "judged", "components": [
            {"name": "answer_accuracy"}, {"name": "tapo_tool", "weight": 0.5, "params": {"mode": "judge", "judge": cfg}}]}))
        run, recorded = make_run(tmp_path / "run", str(path))
        assert recorded[0]["components"]["tapo_tool"]["steps"] == [0.5, 0.5]
        server.responder = lambda body: (500, "the judge is gone")
        judge_module._CLIENTS.clear()  # a fresh process: only the disk cache remains
        summary = rescore(run, load_reward_set(path), tmp_path / "out")
    assert [json.loads(json.dumps(b.to_dict())) for b in summary.breakdowns] == recorded


def test_codevl_rescore_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = make_run(tmp_path / "run")
    assert codevl(["rescore", str(run), "--rewards", "configs/rewards/ablations/codevision_no_penalties.yaml"]) == 0
    out = capsys.readouterr().out
    assert "reward set 'codevision_no_penalties'" in out and "codevision_turn_penalty" in out
    assert "written to" in out and (run / "rescored" / "codevision_no_penalties" / "step_000000.jsonl").is_file()
    assert codevl(["rescore", str(tmp_path / "nowhere"), "--rewards", CODEVISION]) == 2
    assert "neither a run directory nor a .jsonl file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("components:\n  - name: nope\n")
    assert codevl(["rescore", str(run), "--rewards", str(bad)]) == 2
    assert "unknown reward component 'nope'" in capsys.readouterr().err


def test_table_format_has_every_column(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path / "run")
    rs = reward_set_from_config({"name": "mini", "components": [{"name": "answer_accuracy"}, {"name": "exec_success"}]})
    text = format_table(rescore(run, rs, write=False))
    header = next(line for line in text.splitlines() if line.startswith("component"))
    assert header.split() == ["component", "scope", "weight", "mean", "contrib", "n/a", "failed"]
    acc = next(line for line in text.splitlines() if line.startswith("answer_accuracy"))
    # answers per group: B (right), A, C, B (right) -> mean 0.5 over 8
    assert acc.split() == ["answer_accuracy", "episode", "1.000", "0.500", "0.500", "0", "0.0%"]
    succ = next(line for line in text.splitlines() if line.startswith("exec_success"))
    assert succ.split()[-2] == "2"  # the two trajectories without code steps: success rate n/a


def test_codevl_rescore_shows_na_counts_and_what_the_tasks_lack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = make_run(tmp_path / "run")
    assert codevl(["rescore", str(run), "--rewards", "configs/rewards/tapo.yaml", "--no-write"]) == 0
    out = capsys.readouterr().out
    # rollout #2 of each of the 2 steps wrote no code: tapo_tool (a mean over no step) and faithful_crop (no tool
    # output) are n/a there, counted in the n/a column and named with the tasks
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line and line.split()[0] in ("tapo_tool", "faithful_crop")}
    assert rows["tapo_tool"][-2] == "2" and rows["faithful_crop"][-2] == "2"
    assert "n/a tapo_tool: 2 trajectories (no code step; tasks: task0, task1)" in out
    assert "n/a faithful_crop: 2 trajectories (no tool output to judge; tasks: task0, task1)" in out
