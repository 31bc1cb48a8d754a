"""One fixed set of trajectories scored under every shipped reward set, each total hand-computed from the source's
formula (issue 14: "a table test").

Input 200x100, evidence E = (100, 40, 120, 60) (area 400), choice answer "B". Groups: gA = [T1], gB = [T2, T3, T4].

    T1  S_req [rotate90, crop]; step 0 rotate90 (shows the whole rotated image), step 1 crop (90, 30, 130, 70) of
        the rotated view (IoU with E 400 / 1600 = 0.25; TAPO: coverage 1, focus 0.25 -> hit); answers B (right)
    T2  S_req [crop]; step 0 raised (nothing ran or was traced), step 1 enhance + crop E exactly (IoU 1); answers B
    T3  S_req [crop]; no code; answers A (wrong)
    T4  S_req [crop]; step 0 crops the whole image (IoU 400 / 20000 = 0.02; TAPO: no-op crop, redline), step 1
        written but cut by the turn limit (never executed); no answer (turn limit)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rewards import reward_set_from_config
from rollout.trajectory import FinishReason, Trajectory
from tests.rewards.builders import crop, failed, ok, op, shown, task, trajectory
from tests.rewards.judge_server import JudgeServer

CONFIGS = Path("configs/rewards")


def fixed_trajectories() -> list[Trajectory]:
    t1 = task(required=["rotate90", "crop"], tid="T1")
    rot = ok([op("rotate90")], [shown((0, 0, 200, 100), ["rotate90"])])
    rot_crop = ok([op("crop", (90, 30, 130, 70))], [shown((90, 30, 130, 70), ["rotate90", "crop"])])
    t2, t3, t4 = (task(required=["crop"], tid=f"T{i}") for i in (2, 3, 4))
    enhance_crop = ok([op("enhance"), op("crop", (100, 40, 120, 60))], [shown((100, 40, 120, 60), ["crop", "enhance"])])
    return [trajectory(t1, [("rotate", rot), ("crop", rot_crop)], answer="B", tid="T1", group="gA"),
            trajectory(t2, [("bad", failed()), ("crop", enhance_crop)], answer="B", tid="T2", group="gB"),
            trajectory(t3, [], answer="A", tid="T3", group="gB"),
            trajectory(t4, [("whole", crop((0, 0, 200, 100))), ("cut", None)], answer=None,
                       finish=FinishReason.TURN_LIMIT, tid="T4", group="gB")]


# Hand-computed totals [T1, T2, T3, T4].
EXPECTED = {
    # paper: acc + 0.1 fmt + sum_t must_use + 0.1 exact + 0.2 r_nec - 0.5 (turn + poor + inappropriate)
    # T1: 1 + 0.1 + (1/2 [rotate90 at step 0] + 0.25/2 [crop at step 1]) + 0.1 (exact, in order) = 1.825
    # T2: 1 + 0.1 + (0 + 1/1) + 0 (the failed step is wasted) + 0.2 * 0.5 = 2.2, r_nec over gB: tool users
    #     {T2, T4} (a block that raised is a call) acc 1/2, non-user T3 acc 0 -> 0.5; paid to T2 (correct only)
    # T3: 0 + 0.1 (answered, well formed) = 0.1
    # T4: 0 + 0 (no answer) + 0.02 (crop IoU, step 0; the cut block gets nothing) + 0.1 (exact: {crop}, no
    #     executed step wasted) = 0.12; turn penalty: 1 executed block, not > 2
    "codevision": [1.825, 2.2, 0.1, 0.12],
    "codevision_no_penalties": [1.825, 2.2, 0.1, 0.12],  # no penalty fired above
    "codevision_no_strategy": [1.1, 1.1, 0.1, 0.0],  # acc + 0.1 fmt only
    # code: r_acc' + 0.1 fmt + r_mand + 0.1 exact + 0.2 emerge - 0.5 (c_usage + r_spur); fmt is uvtr.py's rule,
    # 0 here (no response opens with <think>)
    # T1: 1 + 0 + (1/2 + 0.25/2 = 0.625) + 0.1 = 1.725 (c_usage: 2 - max(2, 2) = 0)
    # T2: 1 + 0 + 1 + 0.1 + 0.2 (enhance, correct) = 2.3 (c_usage: 2 calls incl. the failed one - 2 = 0)
    # T3: r_mand 0 < 0.1 gates r_acc (already 0): 0
    # T4: r_mand 0.02 < 0.1 gates r_acc: 0 * 0.02; 0 + 0 + 0.02 + 0.1 (exact) = 0.12
    "codevision_code": [1.725, 2.3, 0.0, 0.12],
    # DeepEyes: 0.8 acc - 0.2 [format error] + 1.2 [image came back and correct]
    "deepeyes": [2.0, 2.0, 0.0, 0.0],
    # Pixel-Reasoner: r + curiosity - 0.05 (ncall - 1); gA RaPR 1, gB RaPR 2/3 (T2: 2, T4: 2 requested calls)
    # -> no curiosity; T1: 1 - 0.05 = 0.95; T2: 1 - 0.05 = 0.95 (last call succeeded); T3: 0; T4: 0 - 0.05
    "pixel_reasoner": [0.95, 0.95, 0.0, -0.05],
    # PyVision-RL: acc + 0.1 per executed call when correct; the released reward reads only answers written
    # "<answer>\n\boxed{...}\n</answer>" (multi_task_verifier.py), which none of these is: 0 everywhere
    # (tests/rewards/test_peers.py scores answers in that layout: 1 + 0.1 per call)
    "pyvision_rl": [0.0, 0.0, 0.0, 0.0],
    # TAPO: acc + 0.5 * mean over executed steps of the step score
    # T1: steps 0.25 (rotated full view: coverage 1, focus 0.02 -> cluttered), 1 (hit) -> 1 + 0.5 * 0.625 = 1.3125
    # T2: -1 (avoidable error), 1 (hit) -> 1 + 0.5 * 0 = 1.0; T3: no step -> n/a, 0
    # T4: -1 (no-op crop), cut block n/a -> 0 + 0.5 * -1 = -0.5
    "tapo": [1.3125, 1.0, 0.0, -0.5],
    "tapo_judge": [1.3125, 1.0, 0.0, -0.5],  # every task has boxes: rules, no judge call
    "tapo_no_tool_reward": [1.0, 1.0, 0.0, 0.0],  # accuracy only
    # CodeV released: acc + 0.3 fmt + 0.5 process, the judge answering 0.5 for every trajectory
    # T1, T2: 1 + 0.3 + 0.25 = 1.55; T3: 0 + 0.3 + 0.25 = 0.55; T4: 0 + 0 + 0.25 = 0.25
    "tapo_code": [1.55, 1.55, 0.55, 0.25],
}


def _with_judge(node: Any, server: JudgeServer) -> Any:
    """The YAML with every judge pointed at the local test server (no cache directory written)."""
    if isinstance(node, dict):
        out = {k: _with_judge(v, server) for k, v in node.items()}
        if isinstance(out.get("judge"), dict):
            out["judge"].update(base_url=server.url, backoff_s=0.0, max_retries=0)
            out["judge"].pop("cache_dir", None)
        return out
    if isinstance(node, list):
        return [_with_judge(v, server) for v in node]
    return node


def test_every_shipped_set_is_in_the_table() -> None:
    names = {yaml.safe_load(p.read_text())["name"] for p in CONFIGS.rglob("*.yaml")}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_set_totals_match_the_hand_computed_table(path: Path, judge_server: JudgeServer) -> None:
    judge_server.responder = lambda body: (200, "SCORE: 0.5")
    data = _with_judge(yaml.safe_load(path.read_text()), judge_server)
    rs = reward_set_from_config(data, source=str(path))
    bs = rs.score(fixed_trajectories())
    assert [b.total for b in bs] == pytest.approx(EXPECTED[rs.name], abs=1e-12), rs.name
    for b in bs:
        assert b.failed() == []
        assert b.total == pytest.approx(b.episode + sum(b.steps), abs=1e-12)  # the trainer's contract
        assert len(b.steps) == 2 or b.steps == []
