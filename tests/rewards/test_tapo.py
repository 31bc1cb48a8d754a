"""TAPO rule-based step rewards (docs/methods.md): every branch of the step rubric, hand-computed.

Setup: 200x100 input, evidence E = (100, 40, 120, 60) (area 400); thresholds min_coverage 0.8, min_focus 0.04,
min_inside_fraction 0.5, repeat_iou 0.95, noop_area_fraction 0.95; tapo.yaml: 1.0 acc + 0.5 tapo_tool (mean).
"""

from __future__ import annotations

import pytest

from rewards import RewardSet, build_component, load_reward_set
from sandbox.result import ExecResult, ExecStatus
from tests.rewards.builders import crop, failed, ok, op, shown, task, trajectory

TAPO = load_reward_set("configs/rewards/tapo.yaml")


def test_every_branch_of_the_step_rubric() -> None:
    steps = [
        crop((90, 30, 130, 70)),  # 0 hit: coverage 1, focus 400 / 1600 = 0.25
        crop((0, 0, 200, 90)),  # 1 cluttered: coverage 1, focus 400 / 18000 = 0.022 < 0.04 (area 0.9 < 0.95)
        crop((0, 0, 50, 50)),  # 2 miss: coverage 0
        failed("error"),  # 3 avoidable error
        crop((150, 50, 400, 150)),  # 4 invalid: inside fraction 2500 / 25000 = 0.1 < 0.5
        crop((50, 50, 40, 60)),  # 5 invalid: degenerate
        crop((90, 30, 130, 70)),  # 6 repeats step 0 (IoU 1 >= 0.95)
        crop((0, 0, 200, 100)),  # 7 no-op crop: the whole image
        failed("crashed"),  # 8 unavoidable failure
        None,  # 9 not run
        ok([op("rotate90")], [shown((0, 0, 200, 100), ["rotate90"])]),  # 10 full rotated view: focus 0.02 -> cluttered
        ok(stdout="mean = 12.5"),  # 11 text only: miss
        ok(images=[shown((0, 0, 200, 100), [])]),  # 12 the input shown unchanged: not informative -> miss
    ]
    tr = trajectory(task(), [(f"s{i}", r) for i, r in enumerate(steps)])
    (b,) = TAPO.score([tr])
    c = b.components["tapo_tool"]
    expected = [1.0, 0.25, 0.0, -1.0, -1.0, -1.0, -1.0, -1.0, 0.0, 0.0, 0.25, 0.0, 0.0]
    assert c.steps == expected
    assert c.info["reasons"] == ["hit", "cluttered", "miss", "error", "invalid_coordinates", "invalid_coordinates",
                                 "repeated_noop_crop", "repeated_noop_crop", "unavoidable_failure", "not_run",
                                 "cluttered", "miss", "miss"]
    # r_tool = mean = -3.5 / 13; each step carries 0.5 * s_t / 13; total = 1 + 0.5 * (-3.5 / 13) = 0.865385
    assert c.value == pytest.approx(-3.5 / 13)
    assert b.steps == pytest.approx([0.5 * s / 13 for s in expected])
    assert b.total == pytest.approx(1 - 1.75 / 13)


def test_a_step_with_a_new_crop_besides_a_repeat_is_not_a_redline() -> None:
    first = crop((90, 30, 130, 70))
    both = ok([op("crop", (90, 30, 130, 70)), op("crop", (95, 35, 125, 65))],
              [shown((90, 30, 130, 70)), shown((95, 35, 125, 65))])
    (b,) = TAPO.score([trajectory(task(), [("a", first), ("b", both)])])
    assert b.components["tapo_tool"].steps == [1.0, 1.0]


def test_no_code_steps_and_no_evidence() -> None:
    (b,) = TAPO.score([trajectory(task(), [])])
    assert b.components["tapo_tool"].steps == [] and b.components["tapo_tool"].status == "n/a" and b.total == 1.0
    # no evidence and no judge: neutral 0, but redlines still apply
    t = task(evidence=())
    (b,) = TAPO.score([trajectory(t, [("a", crop((0, 0, 50, 50))), ("b", failed()), ("c", crop((0, 0, 50, 50)))])])
    assert b.components["tapo_tool"].steps == [0.0, -1.0, -1.0]
    assert b.components["tapo_tool"].info["reasons"] == ["no_evidence", "error", "repeated_noop_crop"]


def test_evidence_on_another_image_and_untraced_outputs_miss() -> None:
    t = task(evidence=[{"box": [100, 40, 120, 60], "image": 1}], n_images=2)
    on0 = crop((90, 30, 130, 70), input_index=0)
    on1 = crop((90, 30, 130, 70), input_index=1)
    untraced_out = ExecResult(ExecStatus.OK, images=[shown((0, 0, 1, 1))])
    untraced_out.images[0].region = None
    (b,) = TAPO.score([trajectory(t, [("a", on0), ("b", on1), ("c", untraced_out)])])
    assert b.components["tapo_tool"].steps == [0.0, 1.0, 0.0]


def test_all_failed_steps_and_sum_reduction() -> None:
    rs = RewardSet([build_component("tapo_tool", weight=0.5, params={"reduce": "sum", "mode": "rule"})])
    (b,) = rs.score([trajectory(task(), [("a", failed()), ("b", failed("timeout")), ("c", failed("memory"))])])
    assert b.components["tapo_tool"].steps == [-1.0, -1.0, -1.0]
    assert b.steps == [-0.5, -0.5, -0.5] and b.total == -1.5  # sum: each step counts once
    custom = RewardSet([build_component("tapo_tool", params={"avoidable_statuses": ["error"], "redline_score": -0.5,
                                                              "hit_score": 0.8})])
    (b,) = custom.score([trajectory(task(), [("a", failed("timeout")), ("b", failed()), ("c", crop((95, 35, 125, 65)))])])
    assert b.components["tapo_tool"].steps == [0.0, -0.5, 0.8]


def test_rotated_then_cropped_region_from_the_trace() -> None:
    # the model rotated the image by 90 degrees and cropped (40, 80, 60, 100) of the rotated view: the trace maps
    # it back to the original, (100, 40, 120, 60) = E, so coverage 1 and focus 1
    r = ok([op("rotate90"), op("crop", (100, 40, 120, 60))], [shown((100, 40, 120, 60), ["rotate90", "crop"])])
    (b,) = TAPO.score([trajectory(task(required=["rotate90", "crop"]), [("rc", r)])])
    assert b.components["tapo_tool"].steps == [1.0]


def test_ablation_without_the_tool_reward_logs_it() -> None:
    abl = load_reward_set("configs/rewards/ablations/tapo_no_tool_reward.yaml")
    tr = trajectory(task(), [("a", crop((90, 30, 130, 70)))])
    (full,) = TAPO.score([tr])
    (ab,) = abl.score([tr])
    assert full.total == 1.5 and ab.total == 1.0
    assert ab.components["tapo_tool"].value == full.components["tapo_tool"].value == 1.0
