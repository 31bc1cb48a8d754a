"""CodeVision rewards, paper and released-code variants (agent_loop.py `_compute_tool_reward_for_sample`), against
hand-computed values.

Shared setup: 200x100 input, evidence box E = (100, 40, 120, 60) (area 400).
The totals use the shipped sets, configs/rewards/codevision.yaml (paper) and codevision_code.yaml (code):

    paper: 1.0 acc + 0.1 fmt + 1.0 must_use (steps) + 0.1 exact_set + 0.2 suggested_tool
           - 0.5 turn_penalty - 0.5 poor_reasoning - 0.5 inappropriate_tool
    code:  1.0 acc' + 0.1 fmt + 1.0 r_mand + 0.0 r_nec' + 0.1 exact + 0.2 emerge - 0.5 c_usage - 0.5 r_spur
           (exec_error logged at weight 0: the released code discards the tool's -0.05 per failed call)

The code set's fmt is the released uvtr.py rule (the response opens with <think>); the trajectories here have no
think tags, so their code-set fmt is 0 (the paper set's fmt is 1 for a clean answer).
"""

from __future__ import annotations

import pytest

from rewards import RewardSet, build_component, load_reward_set
from rewards.components.codevision_paper import necessity
from sandbox.result import ExecResult, ExecStatus, OpRecord
from tests.rewards.builders import crop, failed, ok, op, shown, task, trajectory, untraced

PAPER = load_reward_set("configs/rewards/codevision.yaml")
CODE = load_reward_set("configs/rewards/codevision_code.yaml")


def rotate_step() -> ExecResult:
    return ok([op("rotate90")], [shown((0, 0, 200, 100), ["rotate90"])])


def rotated_crop(box: tuple[float, float, float, float]) -> ExecResult:
    """A crop made on the rotated image; the trace reports it in original coordinates."""
    return ok([op("crop", box)], [shown(box, ["rotate90", "crop"])])


def test_multi_tool_trajectory_step_credit_and_both_totals() -> None:
    t = task(required=["rotate90", "crop"])  # |S_req| = 2
    tr = trajectory(t, [("r", rotate_step()),
                        ("c1", rotated_crop((90, 30, 130, 70))),  # IoU = 400 / 1600 = 0.25
                        ("c2", rotated_crop((98, 38, 122, 62)))])  # IoU = 400 / 576 = 0.694444
    (p,) = PAPER.score([tr])
    # must_use per step: rotate90 first used at step 0 -> 1/2; crop gains (0.25 - 0) / 2, then (0.694444 - 0.25) / 2
    iou2 = 400 / 576
    assert p.components["codevision_must_use"].steps == pytest.approx([0.5, 0.125, (iou2 - 0.25) / 2])
    assert p.steps == pytest.approx([0.5, 0.125, (iou2 - 0.25) / 2])
    assert p.components["codevision_exact_set"].value == 1.0  # {rotate90, crop} == S_req, every step useful
    assert p.components["codevision_turn_penalty"].value == 0.0  # 3 steps, not > 2 + 1
    assert p.components["codevision_poor_reasoning"].value == 0.0
    # total = 1 + 0.1 + (0.5 + iou2 / 2) + 0.1 = 2.047222
    assert p.total == pytest.approx(1.2 + 0.5 + iou2 / 2)
    (c,) = CODE.score([tr])
    # r_mand = 1/2 + iou2 / 2 = 0.847222 = sum of the paper's step credits (placed at the end instead)
    assert c.components["codevision_code_mandatory"].value == pytest.approx(sum(p.components["codevision_must_use"].steps))
    assert c.steps == [0.0, 0.0, 0.0]
    # c_usage = max(0, 3 - max(2, 2)) = 1 -> -0.5; total = 1 + 0 (fmt) + 0.847222 + 0.1 - 0.5 = 1.447222
    assert c.components["codevision_code_usage_cost"].value == 1.0
    assert c.total == pytest.approx(0.6 + 0.5 + iou2 / 2)


def test_poor_reasoning_paper_penalises_code_does_not_gate_when_r_mand_is_high() -> None:
    t = task(required=["rotate90", "crop"])
    both = ok([op("rotate90"), op("crop", (0, 0, 50, 50))], [shown((0, 0, 50, 50), ["rotate90", "crop"])])
    tr = trajectory(t, [("rc", both)])  # correct answer, crop far from the evidence (IoU 0)
    (p,) = PAPER.score([tr])
    # paper: 1 + 0.1 + 0.5 (rotate90) + 0.1 (exact) - 0.5 (poor reasoning: correct, IoU 0 < 0.1) = 1.2
    assert p.components["codevision_poor_reasoning"].value == 1.0
    assert p.total == pytest.approx(1.2)
    (c,) = CODE.score([tr])
    # code: r_mand = 1/2 + 0 = 0.5 >= 0.1, so no gating: 1 + 0 (fmt) + 0.5 + 0.1 = 1.6
    assert c.components["codevision_code_accuracy"].info["gated"] is False
    assert c.total == pytest.approx(1.6)


def test_crop_only_task_with_a_poor_crop_gates_accuracy_in_the_code_variant() -> None:
    t = task(required=["crop"])  # |S_req| = 1
    tr = trajectory(t, [("c", crop((100, 40, 200, 100)))])  # area 6000, IoU = 400 / 6000 = 0.066667
    (p,) = PAPER.score([tr])
    # paper: 1 + 0.1 + 0.066667 (crop credit) + 0.1 (exact) - 0.5 (poor reasoning) = 0.766667
    assert p.total == pytest.approx(1.1 + 1 / 15 + 0.1 - 0.5)
    (c,) = CODE.score([tr])
    # code: r_mand = 0.066667 < 0.1 -> r_acc' = 1 * 0.066667; total = 0.066667 + 0.1 + 0.066667 + 0.1 = 0.333333
    acc = c.components["codevision_code_accuracy"]
    assert acc.value == pytest.approx(1 / 15) and acc.info["gated"] is True
    assert c.components["answer_accuracy"].value == 1.0  # ungated accuracy, logged at weight 0
    assert c.total == pytest.approx(2 / 15 + 0.1)  # fmt 0


def test_spurious_orientation_ops_inappropriate_in_paper_counted_in_code() -> None:
    t = task(required=["crop"])
    tr = trajectory(t, [("x", ok([op("rotate90"), op("flip_h"), op("crop", (100, 40, 120, 60))],
                                 [shown((100, 40, 120, 60), ["rotate90", "flip_h", "crop"])]))])
    (p,) = PAPER.score([tr])
    # paper: 1 + 0.1 + 1.0 (IoU 1) + 0 (exact: {rotate90, flip_h, crop} != {crop}) - 0.5 (inappropriate) = 1.6
    assert p.components["codevision_inappropriate_tool"].value == 1.0
    assert p.components["codevision_exact_set"].value == 0.0
    assert p.total == pytest.approx(1.6)
    (c,) = CODE.score([tr])
    # code: 1 + 0 (fmt) + 1.0 - 0.5 * 2 (two distinct orientation ops) = 1.0
    assert c.components["codevision_code_spurious"].value == 2.0
    assert c.total == pytest.approx(1.0)


def test_emergent_ops_and_failed_calls_in_the_code_variant() -> None:
    t = task(required=["crop"])
    tr = trajectory(t, [("bad", failed()),
                        ("c", ok([op("enhance"), op("resize"), op("crop", (100, 40, 120, 60))],
                                 [shown((100, 40, 120, 60), ["crop", "enhance"])]))])
    (c,) = CODE.score([tr])
    # item 4: resize is one of the released heuristics' detections (tool_use_judge.py "4) Resize"), so it counts
    assert c.components["codevision_code_emerge"].value == 1.0
    assert c.components["codevision_code_emerge"].info == {"ops": ["enhance", "resize"]}
    # item 3: the failed call's -0.05 is logged (exec_error value 1) but at weight 0: the released _call_tool
    # discards it, and the whole reward sits at the end of the episode
    assert c.components["exec_error"].value == 1.0 and c.components["exec_error"].contribution == 0.0
    assert c.steps == [0.0, 0.0]
    # 1 + 0.1 + 1.0 (r_mand: IoU 1 / 1) + 0.1 (exact: {crop}) + 0.2 (emerge) = 2.4;
    # c_usage: code_count 2 (the failed block counts) - max(2, 1) = 0
    assert c.components["codevision_code_usage_cost"].value == 0.0
    assert c.total == pytest.approx(2.3)  # fmt 0
    (p,) = PAPER.score([tr])
    # paper: the failed step is "wasted" -> no exact bonus; 1 + 0.1 + 1.0 = 2.1; exec_error logged only
    assert p.components["codevision_exact_set"].value == 0.0 and p.components["exec_error"].value == 1.0
    assert p.steps == pytest.approx([0.0, 1.0]) and p.total == pytest.approx(2.1)
    # wrong answer: no emergence bonus
    (c,) = CODE.score([trajectory(t, [("c", tr.steps[1].result)], answer="A")])
    assert c.components["codevision_code_emerge"].value == 0.0


def test_grey_conversions_are_emergent_other_conversions_are_not() -> None:
    t = task(required=["crop"])
    rgb = ok([op("crop", (100, 40, 120, 60)), OpRecord("convert", "PIL.Image.Image.convert", 0, None, {"mode": "RGB"})])
    grey = ok([op("crop", (100, 40, 120, 60)), OpRecord("convert", "cv2.cvtColor", 0, None, {"mode": "L"})])
    emerge = RewardSet([build_component("codevision_code_emerge")])
    # released: only convert('L') / cvtColor(..., *2GRAY) is detected ("grayscale"); convert('RGB') is not
    assert emerge.score([trajectory(t, [("c", rgb)])])[0].total == 0.0
    (b,) = emerge.score([trajectory(t, [("c", grey)])])
    assert b.total == 1.0 and b.components["codevision_code_emerge"].info == {"ops": ["grayscale"]}
    # from code (no trace): the static analysis reads the mode
    code = "g = image_clue_0.convert('L')\nshow(g)"
    tr = trajectory(t, [("g", ExecResult(ExecStatus.OK, images=[untraced()]))])
    tr.steps[0].code = code
    assert emerge.score([tr])[0].total == 1.0


def test_a_block_that_raised_counts_as_a_call_and_its_written_ops_as_used_in_the_code_variant() -> None:
    # Item 2. The block rotates then crops exactly the evidence, but the worker reports an error on line 1, so
    # nothing ran and nothing was traced. The released code parsed the ops before running the block:
    # used = {rotate_90, crop}, crop box (40, 80, 60, 100) on the rotated image = E in the original.
    t = task(required=["rotate90", "crop"])  # |S_req| = 2
    code = "r = image_clue_0.rotate(90, expand=True)\nc = r.crop((40, 80, 60, 100))\nshow(c)"
    tr = trajectory(t, [("x", failed(line=1))])
    tr.steps[0].code = code
    (c,) = CODE.score([tr])
    # r_mand = 1/2 (rotate90) + IoU 1 / 2 = 1.0; exact: {rotate90, crop} == S_req -> 0.1; code_count 1 -> c_usage 0
    # total = 1 + 0.1 + 1.0 + 0.1 = 2.2
    assert c.components["codevision_code_mandatory"].value == pytest.approx(1.0)
    assert c.components["codevision_code_exact"].value == 1.0
    assert c.total == pytest.approx(2.1)  # fmt 0
    (p,) = PAPER.score([tr])
    # paper: "used correctly" only: must_use 0; exact 0; correct with max IoU 0 < 0.1 -> poor reasoning
    # total = 1 + 0.1 + 0 - 0.5 = 0.6
    assert p.components["codevision_must_use"].steps == [0.0]
    assert p.components["codevision_poor_reasoning"].value == 1.0
    assert p.total == pytest.approx(0.6)


def test_exact_set_needs_a_nonempty_required_set_and_the_paper_order() -> None:
    exact = RewardSet([build_component("codevision_exact_set")])
    code_exact = RewardSet([build_component("codevision_code_exact")])
    rot_then_crop = [("r", rotate_step()), ("c", rotated_crop((100, 40, 120, 60)))]
    crop_then_rot = [("c", crop((100, 40, 120, 60))), ("r", rotate_step())]
    in_order = task(required=["rotate90", "crop"])
    # paper: first uses rotate90 (step 0) then crop (step 1) = S_req's order -> 1; reversed -> 0
    assert exact.score([trajectory(in_order, rot_then_crop)])[0].total == 1.0
    assert exact.score([trajectory(in_order, crop_then_rot)])[0].total == 0.0
    # the released code compares sets only: both orders earn it
    assert code_exact.score([trajectory(in_order, crop_then_rot)])[0].total == 1.0
    # item 4: never paid for an empty S_req, even when nothing was used
    empty = trajectory(task(required=[]), [], answer="B")
    assert exact.score([empty])[0].total == 0.0 and code_exact.score([empty])[0].total == 0.0


def test_turn_penalty_and_usage_cost() -> None:
    t = task(required=["crop"])
    steps = [(f"s{i}", crop((100, 40, 120, 60))) for i in range(4)]
    (p,) = PAPER.score([trajectory(t, steps)])
    (c,) = CODE.score([trajectory(t, steps)])
    assert p.components["codevision_turn_penalty"].value == 1.0  # 4 > 1 + 1
    assert c.components["codevision_code_usage_cost"].value == 2.0  # 4 - max(2, 1)
    assert PAPER.score([trajectory(t, steps[:2])])[0].components["codevision_turn_penalty"].value == 0.0


def test_blocks_never_executed_are_not_code_calls() -> None:
    # Item 5: two blocks ran, two more were cut by the turn limit (Step.result None, skipped "turn_limit")
    t = task(required=["crop"])
    steps = [("a", crop((100, 40, 120, 60))), ("b", crop((100, 40, 120, 60))), ("c", None), ("d", None)]
    tr = trajectory(t, steps)
    (p,) = PAPER.score([tr])
    (c,) = CODE.score([tr])
    assert p.components["codevision_turn_penalty"].value == 0.0  # 2 executed, not > 1 + 1
    assert c.components["codevision_code_usage_cost"].value == 0.0  # 2 - max(2, 1) = 0
    # the unexecuted blocks get no strategy share (None: n/a), the executed ones keep theirs
    assert p.components["codevision_must_use"].steps == [1.0, 0.0, None, None]
    assert p.steps == pytest.approx([1.0, 0.0, 0.0, 0.0])
    # exact set: the unexecuted blocks are not wasted steps, but the second crop is not wasted either (uses crop)
    assert p.components["codevision_exact_set"].value == 1.0


def test_suggested_tool_is_paid_to_correct_tool_users_when_few_are_correct_without_tools() -> None:
    t = task(required=["crop"])
    good = crop((100, 40, 120, 60))  # IoU 1
    miss = crop((0, 0, 10, 10))  # IoU 0
    group = [trajectory(t, [("c", good)], answer="B", tid="r1"),  # tool, correct
             trajectory(t, [("c", miss)], answer="A", tid="r2"),  # tool, wrong
             trajectory(t, [], answer="A", tid="r3"),  # no tool, wrong
             trajectory(t, [("c", failed())], answer="A", tid="r4")]  # a block that raised: a tool call, wrong
    # used = [T, T, F, T]; acc(tool) = 1/3, acc(no tool) = 0/1 -> r_nec = 1/3; correct without tools: 0 < 2
    # paid only to the correct tool user r1 (item 1: wrong answers are not paid)
    paper = [b.components["codevision_suggested_tool"].value for b in PAPER.score(group)]
    assert paper == pytest.approx([1 / 3, 0.0, 0.0, 0.0])
    code = CODE.score(group)
    assert [b.components["codevision_code_necessity"].value for b in code] == pytest.approx([1 / 3, 0.0, 0.0, 0.0])
    assert all(b.components["codevision_code_necessity"].contribution == 0.0 for b in code)  # beta = 0.0
    # 2 rollouts correct without tools: nobody is paid, although acc(tool) 3/3 - acc(no tool) 2/4 = 0.5 > 0
    big = [trajectory(t, [("c", good)], tid=f"u{i}") for i in range(3)]
    big += [trajectory(t, [], answer=a, tid=f"n{i}") for i, a in enumerate("BBAA")]
    vals = [b.components["codevision_suggested_tool"] for b in PAPER.score(big)]
    assert vals[0].info["r_nec"] == 0.5 and vals[0].info["correct_without_tool"] == 2
    assert [v.value for v in vals] == [0.0] * 7
    # no comparison possible, or tools hurt: 0
    assert necessity([True, True], [True, False]) == 0.0
    assert necessity([True, False], [False, True]) == 0.0
    assert necessity([], []) == 0.0
    # suggested tool named per task
    rs = RewardSet([build_component("codevision_suggested_tool", params={"tools": ["enhance"]})])
    assert [b.total for b in rs.score(group)] == [0.0] * 4  # nobody enhanced: nothing to compare
    t2 = task(required=["crop"], metadata={"suggested_ops": ["crop"]})
    g2 = [trajectory(t2, [("c", good)], tid="a"), trajectory(t2, [], answer="A", tid="b")]
    # acc(crop users) 1/1 - acc(others) 0/1 = 1, paid to the correct crop user
    assert [b.total for b in rs.score(g2)] == [1.0, 0.0]


def test_crop_outside_the_image_is_clipped_before_iou() -> None:
    t = task(required=["crop"])
    rs = RewardSet([build_component("codevision_code_mandatory")])
    # (90, 30, 400, 70) clipped to (90, 30, 200, 70): area 4400 -> IoU 400 / 4400 (unclipped it would be 400 / 12400)
    assert rs.score([trajectory(t, [("c", crop((90, 30, 400, 70)))])])[0].total == pytest.approx(400 / 4400)
    assert rs.score([trajectory(t, [("c", crop((300, 0, 400, 50)))])])[0].total == 0.0


def test_used_ops_from_code_when_the_step_has_no_trace() -> None:
    t = task(required=["rotate90", "crop"])
    # rotate90 (CCW, expand) on 200x100, then crop (40, 80, 60, 100) in the rotated image: original x = 200 - y'
    # -> [100, 120], y = x' -> [40, 60]: exactly the evidence box
    code = "r = image_clue_0.rotate(90, expand=True)\nc = r.crop((40, 80, 60, 100))\nshow(c)"
    tr = trajectory(t, [("rc", ExecResult(ExecStatus.OK, images=[untraced()]))])
    tr.steps[0].code = code
    (p,) = PAPER.score([tr])
    assert p.components["codevision_must_use"].steps == pytest.approx([1.0])  # 1/2 rotate90 + IoU 1 / 2
    (c,) = RewardSet([build_component("codevision_code_mandatory", params={"ops_source": "trace"})]).score([tr])
    assert c.total == 0.0  # trace only: nothing was traced


def test_crop_required_without_a_box_is_na_not_zero() -> None:
    # Item 10: crop credit cannot be judged without a box: n/a (counted), and the code variant's gate is off
    tr = trajectory(task(required=["crop"], evidence=()), [("c", crop((0, 0, 5, 5)))])
    (p,) = PAPER.score([tr])
    for key in ("codevision_must_use", "codevision_poor_reasoning"):
        assert p.components[key].status == "n/a" and p.components[key].contribution == 0.0
        assert "no evidence box" in p.na()[key]
    # paper total: 1 (acc) + 0.1 (fmt) + 0.1 (exact: {crop} == S_req, one step, it used crop) = 1.2
    assert p.components["codevision_exact_set"].value == 1.0
    assert p.total == pytest.approx(1.2)
    (c,) = CODE.score([tr])
    assert c.components["codevision_code_mandatory"].status == "n/a"
    acc = c.components["codevision_code_accuracy"]
    assert acc.value == 1.0 and acc.info["gated"] is False and acc.info["r_mand"] is None
    # code total: 1 + 0 (fmt) + 0.1 (exact) = 1.1
    assert c.total == pytest.approx(1.1)
    # S_req empty and no code: no exact bonus in either variant (item 4); the strategy sum over no steps is 0
    tr = trajectory(task(required=[]), [], answer="B")
    (p,) = PAPER.score([tr])
    (c,) = CODE.score([tr])
    assert p.components["codevision_exact_set"].value == 0.0 and c.components["codevision_code_exact"].value == 0.0
    assert p.components["codevision_must_use"].steps == [] and p.components["codevision_must_use"].value == 0.0
    assert c.components["codevision_code_mandatory"].value == 0.0


def test_released_r_acc_is_binary_even_with_a_graded_answer_score() -> None:
    # box answer (0, 0, 10, 10); predicted (0, 0, 10, 8): IoU 80 / 100 = 0.8 >= 0.5 -> correct
    t = task([0, 0, 10, 10], "box", required=[])
    tr = trajectory(t, [], answer="[0, 0, 10, 8]")
    graded = {"box_score": "iou", "rules": "package"}  # this package's box matching (CodeVision's rule has none)
    released = RewardSet([build_component("codevision_code_accuracy", params=graded)])
    plain = RewardSet([build_component("answer_accuracy", params=graded)])
    # released: r_acc = 1.0 if is_correct (agent_loop.py), not the graded 0.8
    assert released.score([tr])[0].total == 1.0
    assert plain.score([tr])[0].total == pytest.approx(0.8)
    kept = RewardSet([build_component("codevision_code_accuracy", params={**graded, "binary": False})])
    assert kept.score([tr])[0].total == pytest.approx(0.8)
