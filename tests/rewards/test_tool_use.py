"""Which ops a step used: the trace first, static analysis as the fallback, and the counting rules."""

from __future__ import annotations

from rewards.tool_use import analyse_steps, image_variable_names, input_sizes, tool_calls, used_ops
from sandbox.result import ExecResult, ExecStatus
from tests.rewards.builders import crop, failed, ok, op, shown, task, trajectory, untraced


def test_trace_ops_count_only_on_input_derived_data() -> None:
    t = task(required=["rotate90"])
    tr = trajectory(t, [("x", ok([op("rotate90", input_index=None), op("flip_h")]))])
    (s,) = analyse_steps(tr)
    assert s.source == "trace" and s.op_names() == {"flip_h"}  # rotating a canvas is not using the tool


def test_auto_falls_back_to_code_without_a_trace_and_trace_wins_otherwise() -> None:
    t = task()
    code = "r = image_clue_0.rotate(90, expand=True)\nshow(r.crop((10, 20, 30, 60)))"
    untraced_result = ExecResult(ExecStatus.OK, images=[untraced()])
    tr = trajectory(t, [(code, untraced_result), (code, ok([op("flip_v")]))])
    a, b = analyse_steps(tr)
    assert a.source == "code" and a.op_names() == {"rotate90", "crop"}
    # rotate90 on 200x100: x = 200 - y' -> [140, 180]; y = x' -> [10, 30]
    assert a.crop_boxes() == [(0, (140.0, 10.0, 180.0, 30.0))]
    assert a.outputs[0].region is not None and a.outputs[0].region.ops == ["rotate90", "crop"]
    assert b.source == "trace" and b.op_names() == {"flip_v"}  # the code says rotate+crop; the trace says what ran
    assert analyse_steps(tr, "trace")[0].op_names() == set()
    assert analyse_steps(tr, "code")[1].op_names() == {"rotate90", "crop"}


def test_static_regions_are_assigned_only_when_the_counts_match() -> None:
    code = "show(image_clue_0.crop((0, 0, 10, 10)))"
    tr = trajectory(task(), [(code, ExecResult(ExecStatus.OK, images=[untraced(), untraced()]))])
    assert all(o.region is None for o in analyse_steps(tr)[0].outputs)


def test_failed_blocks_use_ops_before_the_failing_line_only() -> None:
    code = "a = image_clue_0.rotate(90, expand=True)\nundefined_name\nb = a.crop((0, 0, 5, 5))"
    tr = trajectory(task(), [(code, failed("error", line=2)), (code, failed("error", line=None)),
                             (code, failed("timeout")), (code, None)])
    s0, s1, s2, s3 = analyse_steps(tr)
    assert s0.op_names() == {"rotate90"} and s0.source == "code" and s0.error_type == "ValueError"
    assert s1.op_names() == set() and s2.op_names() == set()
    assert s3.source == "none" and not s3.ran
    # a failed step's ops do not count as uses unless include_failed
    assert used_ops([s0, s1, s2, s3]) == set() and used_ops([s0], include_failed=True) == {"rotate90"}
    assert tool_calls([s0, s1, s2, s3]) == 0 and tool_calls([s0, s1, s2, s3], include_failed=True) == 3


def test_crop_boxes_merge_ops_and_shown_regions_without_duplicates() -> None:
    r = ok([op("crop", (1, 2, 30, 40)), op("crop", (5, 5, 9, 9), input_index=None)],
           [shown((1, 2, 30, 40)), shown((0, 0, 200, 100), ["rotate90"]), shown((50, 50, 60, 60), ["crop", "resize"])])
    (s,) = analyse_steps(trajectory(task(), [("x", r)]))
    assert s.crop_boxes() == [(0, (1.0, 2.0, 30.0, 40.0)), (0, (50.0, 50.0, 60.0, 60.0))]


def test_sizes_and_variable_names() -> None:
    tr = trajectory(task(n_images=2, evidence=()), [("x", crop((0, 0, 5, 5)))], protocol="pyvision")
    assert input_sizes(tr) == [(200, 100), (200, 100)]
    assert image_variable_names(tr) == {"image_clue_0": 0, "image_clue_1": 1}
    tr.images = []
    assert input_sizes(tr) is None


def test_codevision_protocol_names_its_image_image() -> None:
    code = "show(image.crop((10, 20, 30, 60)))"
    tr = trajectory(task(), [(code, ExecResult(ExecStatus.OK, images=[untraced()]))], protocol="codevision")
    assert image_variable_names(tr) == {"image": 0}
    (s,) = analyse_steps(tr)
    assert s.source == "code" and s.crop_boxes() == [(0, (10.0, 20.0, 30.0, 60.0))]
