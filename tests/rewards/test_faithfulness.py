"""CodeV faithfulness (rule-based): per-output labels, per-sample any-faithful, the 2x2 table and the ratios.

Evidence E = (100, 40, 120, 60) on a 200x100 image; faithful = coverage >= 0.8 and focus >= 0.04.
"""

from __future__ import annotations

import pytest

from rewards import RewardSet, batch_metrics, build_component, evaluate_faithfulness
from rewards.faithfulness import FaithfulnessParams
from sandbox.result import ExecResult, ExecStatus
from tests.rewards.builders import crop, ok, shown, task, trajectory, untraced


def samples() -> list:
    t, t_none = task(), task(evidence=(), tid="t_none")
    return [
        # s1: (90, 30, 130, 70): coverage 1, focus 400 / 1600 = 0.25 -> faithful; correct
        trajectory(t, [("a", crop((90, 30, 130, 70)))], answer="B", tid="s1"),
        # s2: (0, 0, 200, 90): focus 400 / 18000 = 0.022 (cluttered); (0, 0, 50, 50): coverage 0; correct
        trajectory(t, [("a", crop((0, 0, 200, 90))), ("b", crop((0, 0, 50, 50)))], answer="B", tid="s2"),
        # s3: (102, 42, 118, 58): coverage 256 / 400 = 0.64 < 0.8; then (95, 35, 125, 65): coverage 1,
        #     focus 400 / 900 = 0.44 -> faithful; wrong answer
        trajectory(t, [("a", crop((102, 42, 118, 58))), ("b", crop((95, 35, 125, 65)))], answer="A", tid="s3"),
        # s4: no tool use -> no tool output: n/a, left out of the table (CodeV counts samples with >= 1 crop); wrong
        trajectory(t, [], answer="C", tid="s4"),
        # s5: no evidence boxes -> not applicable (rules)
        trajectory(t_none, [("a", crop((0, 0, 9, 9)))], answer="B", tid="s5"),
        # s6: an output the sandbox could not trace -> not faithful; correct
        trajectory(t, [("a", ExecResult(ExecStatus.OK, images=[untraced()]))], answer="B", tid="s6"),
    ]


def test_labels_table_and_ratios() -> None:
    report = evaluate_faithfulness(samples())
    assert [s.any_faithful for s in report.samples] == [True, False, True, None, None, False]
    assert [s.correct for s in report.samples] == [True, True, False, False, True, True]
    s3 = report.samples[2].outputs
    assert (s3[0].faithful, s3[0].coverage, s3[1].faithful, s3[1].focus) == (False, 0.64, True, pytest.approx(400 / 900))
    assert report.samples[5].outputs[0].method == "untraced"
    # over the 4 samples with evidence and at least one output (s1, s2, s3, s6): s4 (no output) is not "unfaithful"
    assert report.table() == {"faithful_correct": 1, "faithful_wrong": 1, "unfaithful_correct": 2, "unfaithful_wrong": 0}
    assert report.p_correct_given_faithful() == 0.5  # 1 / (1 + 1)
    assert report.p_faithful_given_correct() == pytest.approx(1 / 3)  # 1 / (1 + 2)
    assert report.faithful_rate() == pytest.approx(2 / 4)
    m = report.to_metrics()
    assert m["faithfulness/applicable"] == 5 and m["faithfulness/outputs"] == 6 and m["faithfulness/untraced_outputs"] == 1
    assert m["faithfulness/no_output"] == 1
    assert m["faithfulness/output_faithful_rate"] == pytest.approx(2 / 6)
    assert m["faithfulness/p_correct_given_faithful"] == 0.5
    text = report.format_table()
    assert "P(correct | faithful) = 0.500" in text and "faithful" in text


def test_given_correctness_and_empty_batches() -> None:
    report = evaluate_faithfulness(samples()[:2], correct=[False, None])
    assert report.table() == {"faithful_correct": 0, "faithful_wrong": 1, "unfaithful_correct": 0, "unfaithful_wrong": 0}
    empty = evaluate_faithfulness([])
    assert empty.p_correct_given_faithful() is None and "faithfulness/p_correct_given_faithful" not in empty.to_metrics()


def test_thresholds_unchanged_inputs_and_failed_blocks() -> None:
    t = task()
    shown_input = ok(images=[shown((0, 0, 200, 100), [])])
    after_error = ExecResult(ExecStatus.ERROR, images=[shown((90, 30, 130, 70))])  # shown, then the block raised
    report = evaluate_faithfulness([trajectory(t, [("a", shown_input)], tid="u"), trajectory(t, [("a", after_error)], tid="e")])
    assert report.samples[0].outputs[0].method == "unchanged" and report.samples[0].any_faithful is False
    assert report.samples[1].any_faithful is True  # the model saw it before the error
    loose = FaithfulnessParams(min_focus=0.01)
    assert evaluate_faithfulness(samples()[1:2], loose).samples[0].any_faithful is True  # 0.022 >= 0.01


def test_faithful_crop_component_logs_it() -> None:
    rs = RewardSet([build_component("answer_accuracy"), build_component("faithful_crop", weight=0.0)])
    bs = rs.score(samples())
    assert [b.components["faithful_crop"].value for b in bs] == [1.0, 0.0, 1.0, None, None, 0.0]
    # item 8: a sample without a tool output is n/a, not 0; so is one without an evidence box (rules)
    assert bs[3].na() == {"faithful_crop": "no tool output to judge"}
    assert bs[4].na() == {"faithful_crop": "no evidence box (and no faithfulness judge)"}
    assert bs[0].components["faithful_crop"].info["outputs"][0]["faithful"] is True


def test_batch_metrics_use_the_recorded_correctness() -> None:
    trs = samples()
    RewardSet([build_component("answer_accuracy", params={"rel_tol": 0.5})]).score(trs)
    trs[2].reward["components"]["answer_accuracy"]["info"]["correct"] = True  # as if recorded with another judge
    m = batch_metrics(trs)
    assert m["faithfulness/faithful_correct"] == 2 and m["faithfulness/faithful_wrong"] == 0
    assert m["reward/answer_accuracy/mean"] == pytest.approx(4 / 6)
    # tools: 1 + 2 + 2 + 0 + 1 + 1 steps over 6 trajectories; 5 of 6 used any; no failed call
    assert m["tools/calls_mean"] == pytest.approx(7 / 6) and m["tools/any_call_rate"] == pytest.approx(5 / 6)
    assert m["tools/failed_call_rate"] == 0.0
    assert "faithfulness/applicable" not in batch_metrics(trs, faithfulness=None)
