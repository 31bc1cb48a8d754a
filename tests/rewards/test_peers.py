"""Peers' tool bonuses with their shipped sets (docs/methods.md, fixed-tool peers), hand-computed."""

from __future__ import annotations

import pytest

from rewards import RewardSet, build_component, load_reward_set
from tests.rewards.builders import crop, failed, ok, task, trajectory


def test_deepeyes() -> None:
    rs = load_reward_set("configs/rewards/deepeyes.yaml")  # 0.8 acc + 0.2 format + 1.2 [tool and correct]
    t = task()
    trs = [trajectory(t, [("a", crop((90, 30, 130, 70)))], answer="B", tid="tool_right"),  # 0.8 + 0.2 + 1.2
           trajectory(t, [], answer="B", tid="notool_right"),  # 0.8 + 0.2
           trajectory(t, [("a", ok())], answer="A", tid="tool_wrong"),  # 0.2
           trajectory(t, [("a", failed())], answer="B", tid="failed_right")]  # a failed call is not a use: 1.0
    assert [b.total for b in rs.score(trs)] == pytest.approx([2.2, 1.0, 0.2, 1.0])
    lenient = RewardSet([build_component("deepeyes_tool_bonus", params={"include_failed_steps": True})])
    assert lenient.score(trs[3:])[0].total == 1.0


def test_pyvision_rl() -> None:
    rs = load_reward_set("configs/rewards/pyvision_rl.yaml")  # acc + 0.1 per tool call when correct
    t = task(12, "number")
    steps = [("a", ok()), ("b", ok()), ("c", failed()), ("d", ok())]
    right, wrong = trajectory(t, steps, answer="12"), trajectory(t, steps, answer="13", tid="w")
    # 3 calls ran to the end: 1 + 0.1 * 3 = 1.3; wrong: 0
    assert [b.total for b in rs.score([right, wrong])] == pytest.approx([1.3, 0.0])
    capped = RewardSet([build_component("pyvision_tool_bonus", weight=0.1, params={"max_calls": 2})])
    assert capped.score([right])[0].total == pytest.approx(0.2)


def test_pixel_reasoner_curiosity_and_extra_calls() -> None:
    rs = load_reward_set("configs/rewards/pixel_reasoner.yaml")  # acc + 0.5 curiosity - 0.05 extra calls
    t = task()
    three = [("a", ok()), ("b", ok()), ("c", ok())]
    group = [trajectory(t, three, answer="B", tid="r1"), trajectory(t, [("a", ok())], answer="A", tid="r2")]
    group += [trajectory(t, [], answer="B", tid=f"n{i}") for i in range(8)]
    # RaPR = 2 / 10 = 0.2 -> curiosity = max(0.3 - 0.2, 0) = 0.1 for tool users
    # r1: 1 + 0.5 * 0.1 - 0.05 * (3 - 1) = 0.95; r2: 0 + 0.05 - 0 = 0.05; others: 1.0
    bs = rs.score(group)
    assert [b.total for b in bs] == pytest.approx([0.95, 0.05] + [1.0] * 8)
    assert bs[0].components["pixel_reasoner_curiosity"].info["group_tool_rate"] == pytest.approx(0.2)
    # a group that already uses tools often gets no bonus: RaPR = 2 / 5 = 0.4 >= 0.3
    bs = rs.score(group[:5])
    assert [b.components["pixel_reasoner_curiosity"].value for b in bs] == [0.0] * 5
    # groups are by group_id: two tasks in one batch are scored separately
    other = [trajectory(task(tid="t1"), [("a", ok())], answer="B", tid=f"o{i}", group="g1") for i in range(2)]
    bs = rs.score(group + other)
    assert [b.components["pixel_reasoner_curiosity"].value for b in bs[-2:]] == [0.0, 0.0]  # RaPR 1.0 there
