"""Peers' rewards with their shipped sets, hand-computed from the released code (DeepEyes vl_agent.py
`compute_score`; PyVision-RL's env step + naive reward manager; Pixel-Reasoner experience_maker.py)."""

from __future__ import annotations

import pytest

from rewards import RewardSet, build_component, load_reward_set
from tests.rewards.builders import crop, failed, ok, task, trajectory


def test_deepeyes_as_released() -> None:
    rs = load_reward_set("configs/rewards/deepeyes.yaml")  # 0.8 acc - 0.2 [format error] + 1.2 [image back, correct]
    t = task()
    long_answer = "B" + " because" * 200  # 1 + 8 * 200 = 1601 characters >= 1000
    trs = [trajectory(t, [("a", crop((90, 30, 130, 70)))], answer="B", tid="tool_right"),  # 0.8 + 0 + 1.2 = 2.0
           trajectory(t, [], answer="B", tid="notool_right"),  # 0.8
           trajectory(t, [("a", crop((90, 30, 130, 70)))], answer="A", tid="tool_wrong"),  # 0
           trajectory(t, [("a", ok(stdout="text only"))], answer="B", tid="text_right"),  # no image came back: 0.8
           trajectory(t, [("a", failed())], answer="B", tid="failed_right"),  # nothing shown: 0.8
           # `<answer>` without `</answer>`: count_answer_1 != count_answer_2 -> format error; acc still 0.8
           trajectory(t, [], answer="B", final_text="<answer>B", events=["unclosed_answer"], tid="bad_format"),  # 0.6
           trajectory(t, [("a", crop((90, 30, 130, 70)))], answer=long_answer, tid="long")]  # 0 - 0.2 + 0 = -0.2
    bs = rs.score(trs)
    assert [b.total for b in bs] == pytest.approx([2.0, 0.8, 0.0, 0.8, 0.8, 0.6, -0.2])
    assert bs[6].components["deepeyes_accuracy"].info["too_long"] is True
    assert bs[6].components["deepeyes_format_error"].info == {"problems": ["answer_too_long"]}
    # a format error is worth 0.2 * (-1), a clean format 0: never +0.2
    assert bs[1].components["deepeyes_format_error"].contribution == 0.0
    # require_image: false counts any executed call as a tool use
    any_call = RewardSet([build_component("deepeyes_tool_bonus", params={"require_image": False})])
    assert any_call.score([trs[3]])[0].total == 1.0


def test_pyvision_rl_pays_for_calls_that_raised_too() -> None:
    rs = load_reward_set("configs/rewards/pyvision_rl.yaml")  # acc + 0.1 per executed tool call when correct
    t = task(12, "number")
    steps = [("a", ok()), ("b", ok()), ("c", failed()), ("d", ok()), ("e", None)]
    # the answer in the released layout (multi_task_verifier.py `<answer>\n\\boxed{...}\n</answer>`)
    right = trajectory(t, steps, answer="12", final_text="<answer>\n\\boxed{12}\n</answer>", protocol="pyvision")
    wrong = trajectory(t, steps, answer="13", final_text="<answer>\n\\boxed{13}\n</answer>", tid="w", protocol="pyvision")
    # 4 executed calls (the one that raised included; the block cut by the turn limit is not a call):
    # 1 + 0.1 * 4 = 1.4; wrong answer: 0 (the env reward is added only when the answer is right)
    assert [b.total for b in rs.score([right, wrong])] == pytest.approx([1.4, 0.0])
    # `<answer>\\boxed{12}</answer>` without the newlines is no answer for the released reward: 0, no bonus
    plain = trajectory(t, steps, answer="12", final_text="<answer>\\boxed{12}</answer>", tid="p", protocol="pyvision")
    assert rs.score([plain])[0].total == 0.0
    capped = RewardSet([build_component("pyvision_tool_bonus", weight=0.1, params={"max_calls": 2})])
    assert capped.score([right])[0].total == pytest.approx(0.2)
    ok_only = RewardSet([build_component("pyvision_tool_bonus", weight=0.1, params={"include_failed_steps": False})])
    assert ok_only.score([right])[0].total == pytest.approx(0.3)


def test_pixel_reasoner_curiosity_penalty_and_unrecovered_failure() -> None:
    rs = load_reward_set("configs/rewards/pixel_reasoner.yaml")  # r + 1.0 curiosity - 0.05 (ncall - 1)
    t = task()
    three = [("a", ok()), ("b", ok()), ("c", ok())]
    group = [trajectory(t, three, answer="B", tid="r1"), trajectory(t, [("a", ok())], answer="A", tid="r2")]
    group += [trajectory(t, [], answer="B", tid=f"n{i}") for i in range(8)]
    # RaPR = 2 / 10 = 0.2 -> curiosity = max(0.3 - 0.2, 0) / 2 / 0.2 * 0.25 = 0.05 / 0.2 * 0.25 = 0.0625
    # r1: 1 + 0.0625 - 0.05 * (3 - 1) = 0.9625; r2: 0 + 0.0625 - 0 = 0.0625; others: 1.0
    bs = rs.score(group)
    assert [b.total for b in bs] == pytest.approx([0.9625, 0.0625] + [1.0] * 8)
    assert bs[0].components["pixel_reasoner_curiosity"].info["group_tool_rate"] == pytest.approx(0.2)
    # RaPR = 1 / 10: curiosity = 0.2 / 2 / 0.1 * 0.25 = 0.25, the released maximum
    one = [group[1]] + group[2:] + [trajectory(t, [], answer="B", tid="n8")]
    assert rs.score(one)[0].components["pixel_reasoner_curiosity"].value == pytest.approx(0.25)
    # a group that already uses tools often gets no bonus: RaPR = 2 / 5 = 0.4 >= 0.3
    bs = rs.score(group[:5])
    assert [b.components["pixel_reasoner_curiosity"].value for b in bs] == [0.0] * 5
    # groups are by group_id: two tasks in one batch are scored separately
    other = [trajectory(task(tid="t1"), [("a", ok())], answer="B", tid=f"o{i}", group="g1") for i in range(2)]
    bs = rs.score(group + other)
    assert [b.components["pixel_reasoner_curiosity"].value for b in bs[-2:]] == [0.0, 0.0]  # RaPR 1.0 there


def test_pixel_reasoner_zeroes_a_correct_answer_after_an_unrecovered_failed_call() -> None:
    acc = RewardSet([build_component("pixel_reasoner_accuracy")])
    t = task()
    # the last executed call failed and the model answered without retrying: r = 0 although correct
    assert acc.score([trajectory(t, [("a", ok()), ("b", failed())], answer="B")])[0].total == 0.0
    # recovered: a later call succeeded
    assert acc.score([trajectory(t, [("a", failed()), ("b", ok())], answer="B")])[0].total == 1.0
    # every requested call counts for the penalty, also one that was cut before it ran:
    # ncall = 3 -> 0.05 * (3 - 1) = 0.1
    calls = RewardSet([build_component("pixel_reasoner_extra_calls", weight=-0.05)])
    steps = [("a", ok()), ("b", ok()), ("c", None)]
    assert calls.score([trajectory(t, steps)])[0].total == pytest.approx(-0.1)
    executed_only = RewardSet([build_component("pixel_reasoner_extra_calls", weight=-0.05,
                                               params={"count_unexecuted": False})])
    assert executed_only.score([trajectory(t, steps)])[0].total == pytest.approx(-0.05)
