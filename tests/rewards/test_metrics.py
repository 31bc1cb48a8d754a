"""`reward/*` logging metrics: every component whatever its weight, failures and n/a counted, hand-computed."""

from __future__ import annotations

import pytest

from rewards import RewardSet, build_component, reward_metrics
from tests.rewards.builders import crop, failed, ok, task, trajectory


def test_reward_metrics_exact_values() -> None:
    rs = RewardSet([build_component("answer_accuracy", weight=0.0), build_component("exec_error", weight=-0.05),
                    build_component("tapo_tool", weight=0.5), build_component("faithful_crop", weight=0.0)])
    t = task()
    trs = [trajectory(t, [("a", crop((90, 30, 130, 70))), ("b", failed())], answer="B", tid="a"),
           trajectory(task(evidence=(), tid="t2"), [("a", ok())], answer="A", tid="b")]
    b1, b2 = rs.score(trs)
    m = reward_metrics([b1.to_dict(), b2])  # recorded dicts or breakdowns
    # accuracy 1 and 0 (weight 0, still logged)
    assert m["reward/answer_accuracy/mean"] == 0.5 and m["reward/answer_accuracy/contribution_mean"] == 0.0
    # exec_error: sums 1 and 0; step values [0, 1] and [0] -> step mean 1/3; contributions -0.05 and 0
    assert m["reward/exec_error/mean"] == 0.5 and m["reward/exec_error/step_mean"] == pytest.approx(1 / 3)
    assert m["reward/exec_error/contribution_mean"] == pytest.approx(-0.025)
    # tapo_tool: [1, -1] -> mean 0; b2 has no evidence box and no judge: n/a (counted, not 0);
    # totals: b1 = 0.5 * (1 - 1) / 2 - 0.05 = -0.05, b2 = 0
    assert m["reward/tapo_tool/mean"] == 0.0 and m["reward/tapo_tool/step_mean"] == 0.0
    assert m["reward/tapo_tool/na_count"] == 1.0 and m["reward/tapo_tool/na"] == 0.5
    assert m["reward/total/mean"] == pytest.approx(-0.025) and m["reward/episode/mean"] == 0.0
    assert m["reward/steps/mean"] == pytest.approx(-0.025)
    # step rewards over the 3 steps: b1 [0.25, -0.25 - 0.05], b2 [0] -> (-0.05) / 3
    assert m["reward/steps/per_step_mean"] == pytest.approx(-0.05 / 3)
    # faithful_crop: applies to b1 only
    assert m["reward/faithful_crop/mean"] == 1.0 and m["reward/faithful_crop/na"] == 0.5
    assert m["reward/faithful_crop/na_count"] == 1.0 and m["reward/answer_accuracy/na_count"] == 0.0
    assert all(m[f"reward/{k}/failed"] == 0.0 for k in ("answer_accuracy", "exec_error", "tapo_tool", "faithful_crop"))
    assert reward_metrics([]) == {}
