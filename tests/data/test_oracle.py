"""Oracle trajectories run in the real sandbox through the real episode loop: right answer, right ops in the trace,
genuine observations, every variant, every protocol."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from data.generators import get_generator
from data.oracle import VARIANTS, OracleUnavailable, applicable_variants, build_oracle_trajectories, oracle_script
from data.oracle.build import check_trajectory
from data.oracle.grounding import grounding_problems
from data.oracle.scripts import OracleScript, OracleTurn, answer_text
from rollout.protocols import get_protocol
from rollout.task import Task
from rollout.trajectory import FinishReason
from sandbox.result import ExecStatus

# Smaller scenes keep the sandbox work small; the target still covers 0.01%-0.1% of the image.
SMALL = {"visual_search": {"min_side": 640, "max_side": 960}, "multi_tool": {"min_side": 640, "max_side": 960}}



@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Task]]:
    root = tmp_path_factory.mktemp("oracle_tasks")
    out: dict[str, list[Task]] = {}
    for name, n in (("orientation", 4), ("visual_search", 2), ("multi_tool", 2), ("symbolic", 5)):
        g = get_generator(name, SMALL.get(name))
        out[name] = [g.write(g.make(i, seed=11), g.task_id(11, i), root) for i in range(n)]
    # make sure an untransformed orientation task is there (for no_tool)
    g = get_generator("orientation", {"transforms": ["none"]})
    out["orientation"].append(g.write(g.make(0, seed=11), "orientation-none", root))
    return out


def test_every_variant_runs_and_checks_out(pool: Any, tasks: dict[str, list[Task]]) -> None:
    all_tasks = [t for ts in tasks.values() for t in ts]
    result = build_oracle_trajectories(all_tasks, protocol=get_protocol("codevl"), pool=pool, progress=False)
    assert not result.failures, "\n".join(f"{f.task_id} {f.variant}: {f.reason}" for f in result.failures)
    expected = 0
    for t in all_tasks:
        for v in applicable_variants(t):
            try:
                oracle_script(t, v)
                expected += 1
            except OracleUnavailable:  # e.g. a text line too large to need a grid search
                pass
    assert len(result.trajectories) == expected
    assert set(Counter(t.metadata["oracle_variant"] for t in result.trajectories)) == set(VARIANTS)
    for traj in result.trajectories:
        task = traj.task
        assert traj.finish_reason is FinishReason.ANSWERED and traj.answer == answer_text(task)
        assert not traj.tokenized  # message-level SFT data
        ops = set().union(*(s.result.ops_used() for s in traj.steps if s.result and s.result.ok)) if traj.steps else set()
        if traj.metadata["oracle_variant"] != "no_tool":
            assert set(task.required_ops) <= ops, (task.id, traj.metadata["oracle_variant"], ops)
        else:
            assert not traj.steps
        # Grounding (also part of the build's check), stated here for every variant: the only numbers not printed
        # before are the script's readings, which the build checked against the evidence in the view.
        script = oracle_script(task, traj.metadata["oracle_variant"])
        assistant = [i for i, t in enumerate(traj.turns) if t.role == "assistant"]
        readings = {assistant[n]: set(t.reading) for n, t in enumerate(script.turns) if t.reading}
        assert grounding_problems(traj, readings=readings) == []
        if readings:
            assert grounding_problems(traj)  # without them, the reading's numbers are ungrounded
        if traj.metadata["oracle_variant"] == "error_recovery":
            first = traj.steps[0].result
            assert first.status is ExecStatus.ERROR and first.error is not None
            obs = traj.turns[traj.steps[0].observation_turn]
            assert first.error.type in obs.text  # the model sees the real error
            assert 'File "/' not in obs.text and "sandbox/" not in obs.text  # only the user's frames, no host paths
            assert all(s.result.status is ExecStatus.OK for s in traj.steps[1:])


def test_observations_are_the_real_outputs(pool: Any, tasks: dict[str, list[Task]]) -> None:
    """The image the loop shows after an orientation fix is the input with the inverse op applied (computed here
    with PIL directly), and a crop shows exactly that window of the input, enlarged."""
    fix = {"rotate90": lambda im: im.rotate(90, expand=True), "rotate270": lambda im: im.rotate(-90, expand=True),
           "rotate180": lambda im: im.rotate(180), "flip_h": ImageOps.mirror, "flip_v": ImageOps.flip}
    orient = next(t for t in tasks["orientation"] if t.required_ops)
    search = tasks["visual_search"][0]
    result = build_oracle_trajectories([orient, search], protocol=get_protocol("codevl"), pool=pool,
                                       variants=["single_tool"], progress=False)
    assert not result.failures
    by_task = {t.task.id: t for t in result.trajectories}
    shown = by_task[orient.id].steps[0].result.images[0].array
    want = np.asarray(fix[orient.required_ops[0]](Image.open(orient.images[0]).convert("RGB")))
    assert np.array_equal(shown[..., :3], want)
    script = oracle_script(search, "single_tool")
    crop = script.final_crop
    shown = by_task[search.id].steps[-1].result.images[0]
    region = Image.open(search.images[0]).convert("RGB").crop(crop)
    assert shown.size[0] % region.size[0] == 0 and shown.size[0] // region.size[0] == shown.size[1] // region.size[1]
    want = np.asarray(region.resize(shown.size, Image.Resampling.LANCZOS))
    assert np.array_equal(shown.array[..., :3], want)
    assert shown.region is not None and tuple(shown.region.box) == tuple(float(v) for v in crop)  # traced back


@pytest.mark.parametrize("protocol", ["pyvision", "codevision", "codev"])
def test_other_protocols(pool: Any, tasks: dict[str, list[Task]], protocol: str) -> None:
    chosen = [tasks["multi_tool"][0], tasks["symbolic"][0]]
    result = build_oracle_trajectories(chosen, protocol=get_protocol(protocol), pool=pool,
                                       variants=["multi_tool", "single_tool", "error_recovery"], progress=False)
    assert not result.failures, [f.reason for f in result.failures]
    assert len(result.trajectories) == 4  # multi_tool task: multi_tool + error_recovery; symbolic: single + error
    assert all(t.protocol == protocol for t in result.trajectories)


def test_symbolic_measurements_print_the_answer(pool: Any, tmp_path: Path) -> None:
    """The analysis code measures each symbolic answer from the pixels (many items, every kind)."""
    g = get_generator("symbolic")
    items = [g.write(g.make(i, seed=5), g.task_id(5, i), tmp_path) for i in range(25)]
    result = build_oracle_trajectories(items, protocol=get_protocol("codevl"), pool=pool, variants=["single_tool"],
                                       progress=False)
    assert not result.failures
    kinds = set()
    for traj in result.trajectories:
        kind = traj.task.metadata["symbolic_kind"]
        kinds.add(kind)
        out = traj.steps[-1].result.stdout
        a = answer_text(traj.task)
        if kind == "touching_circles":
            parts = int(out.strip().splitlines()[-1].split(":")[1])
            assert (parts == 1) == (a == "Yes"), out
        elif kind == "overlapping_circles":
            assert out.startswith(f"ring colours: {a} "), out
        elif kind == "counting":
            assert out.startswith(f"{traj.task.metadata['target_colour']} blobs: {a} "), out
        else:
            assert out.strip().splitlines()[-1].endswith(f": {a}"), out
    assert len(kinds) == 5


def _run_script(pool: Any, task: Task, turns: list[OracleTurn], **kw: Any):
    """Run hand-written oracle turns through the real loop; returns (trajectory, script)."""
    from rollout.loop import EpisodeLimits, run_episodes
    from rollout.scripted import ScriptedPolicy
    import asyncio

    protocol = get_protocol("codevl")
    script = OracleScript(task.id, "single_tool", turns, **kw)
    (traj,) = asyncio.run(run_episodes([task], ScriptedPolicy({task.id: script.render(protocol)}), protocol=protocol,
                                       pool=pool, limits=EpisodeLimits(max_turns=6)))
    return traj, script


def test_the_check_rejects_what_was_not_shown(pool: Any, tasks: dict[str, list[Task]]) -> None:
    """The old kind of oracle (the ground-truth position stated before looking) fails the check; so does a reading
    off a view where the target is not, and an answer stated before the look that shows it."""
    task = tasks["visual_search"][0]
    x1, y1, x2, y2 = (int(v) for v in task.evidence[0].box)
    p = 6
    crop = (x1 - p, y1 - p, x2 + p, y2 + p)
    code = f"c = image_clue_0.crop({crop})\nc = c.resize((c.width * 8, c.height * 8))\nshow(c)"
    a = answer_text(task)
    blind = [OracleTurn(f"The target is near x={(x1 + x2) // 2}, y={(y1 + y2) // 2}; zooming in.", code=code),
             OracleTurn("Visible now.", answer=a)]
    traj, script = _run_script(pool, task, blind, expected_ops={"crop"}, final_crop=crop)
    reason = check_trajectory(traj, script)
    assert reason is not None and "not grounded" in reason and "before any observation showed them" in reason
    assert str((x1 + x2) // 2) in reason

    # the same crop after a reading off a half of the image that holds the target: the reading must hold the
    # evidence (in that view's pixels), visibly
    w, h = task.metadata["image_size"]
    left = max(0, x2 - w // 2)
    look = f"show(image_clue_0.crop(({left}, 0, {left} + image_clue_0.width // 2, image_clue_0.height)))"
    vx1 = x1 - left  # the target's left edge in that view
    wrong = (0, 0, 20, 20) if vx1 > 40 else (w // 2 - 20, 0, w // 2, 20)
    turns = [OracleTurn("Let me look at the whole image.", code=look),
             OracleTurn(f"It spans {wrong}.", code=code, reading=wrong), OracleTurn("Visible now.", answer=a)]
    traj, script = _run_script(pool, task, turns, expected_ops={"crop"}, final_crop=crop)
    reason = check_trajectory(traj, script)
    assert reason is not None and "but the evidence is at" in reason

    # a "zoom" on most of the image zooms nothing (issue: no crop of 60% of the image in a chain)
    whole = "c = image_clue_0.crop((0, 0, image_clue_0.width, image_clue_0.height))\nshow(c)"
    traj, script = _run_script(pool, task, [OracleTurn("Crop.", code=whole), OracleTurn("Done.", answer=a)],
                               expected_ops={"crop"})
    assert "zooms nothing" in (check_trajectory(traj, script) or "")

    if task.answer_type == "text" and len(a) >= 2:
        leak = [OracleTurn(f"It probably says {a}; let me check.", code=look), OracleTurn("Yes.", answer=a)]
        traj, _ = _run_script(pool, task, leak)
        assert any("states the answer" in p for p in grounding_problems(traj))


def test_tracebacks_show_only_the_users_frames(pool: Any, tasks: dict[str, list[Task]]) -> None:
    """A block that fails inside a traced library call (OpenCV given a PIL image) shows the user's line and the
    error, not the sandbox's wrapper files or any host path."""
    task = tasks["orientation"][0]
    turns = [OracleTurn("Rotate with OpenCV.", code="import cv2\nr = cv2.rotate(image_clue_0, cv2.ROTATE_180)",
                        expect_error=True), OracleTurn("Stop.", answer=answer_text(task))]
    traj, _ = _run_script(pool, task, turns)
    obs = traj.turns[traj.steps[0].observation_turn].text
    assert '<cell 1>", line 2' in obs and "error" in obs.lower()
    assert 'File "/' not in obs and "trace_cv2" not in obs, obs


def test_a_turned_landscape_is_fixed_before_the_search(pool: Any, tmp_path: Path) -> None:
    """A quarter turn puts the sky on one side, which the input shows: the oracle says so, fixes the image, then
    searches the upright scene; readings off the upright views are checked in that frame."""
    g = get_generator("multi_tool", {**SMALL["multi_tool"], "transforms": ["rotate90"]})
    task = g.write(g.make(0, seed=3), "mt-turned", tmp_path)
    assert task.metadata["up_cue"] == "landscape" and task.required_ops == ["rotate270", "crop"]
    result = build_oracle_trajectories([task], protocol=get_protocol("codevl"), pool=pool,
                                       variants=["multi_tool", "multi_crop"], progress=False)
    assert not result.failures, [f.reason for f in result.failures]
    for traj in result.trajectories:
        first = traj.turns[0]
        assert "sky" in first.text and "left" in first.text  # rotate90 turned the top to the left
        assert traj.steps[0].result.ops_used() == {"rotate270"}
        assert "crop" in traj.steps[-1].result.ops_used()
