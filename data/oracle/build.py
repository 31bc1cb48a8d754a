"""Oracle trajectories: run each task's oracle script through the real episode loop and keep what checks out.

    result = build_oracle_trajectories(tasks, variants=VARIANTS, protocol=get_protocol("codevl"), pool=pool)
    save_trajectories("sft/oracle.jsonl", result.trajectories)

The scripted policy (`rollout.scripted.ScriptedPolicy`) replays the assistant turns; every code block runs in the
sandbox and its real output becomes the next observation, rendered by the protocol. So the saved trajectories are
message-level SFT data in the exact format the model will see when it acts.

Every trajectory is then checked against its script (`check_trajectory`): it answered, with the task's answer; each
block succeeded, except the one meant to fail, which failed; no crop covers more than half the image (it would zoom
nothing); the sandbox's operation trace shows the ops the script
used (e.g. `rotate270` and `crop`); a traced crop really covers the evidence box; and it is grounded
(`data.oracle.grounding`: no coordinate or answer stated before an observation showed it, no host path in an
observation). A trajectory that fails a check is not kept and is reported with the reason (it means a bug in a generator, a script or the sandbox, never
something to hide).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from data.oracle.grounding import grounding_problems
from data.oracle.search import MAX_CROP_SHARE
from data.oracle.scripts import OracleScript, OracleTurn, OracleUnavailable, answer_text, oracle_script
from data.oracle.variants import VARIANTS, check_variant
from data.orientation import map_box, output_size
from data.resolution import DEFAULT_MAX_PIXELS, LEGIBLE_PX, seen_px
from rollout.task import Task
from rollout.trajectory import FinishReason, Trajectory
from sandbox.result import ORIENTATION_OPS, ExecStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OracleFailure:
    task_id: str
    variant: str
    reason: str


@dataclass
class OracleResult:
    trajectories: list[Trajectory] = field(default_factory=list)
    failures: list[OracleFailure] = field(default_factory=list)
    not_applicable: Counter[str] = field(default_factory=Counter)  # variant -> tasks it does not apply to

    def summary(self) -> str:
        by_variant = Counter(t.metadata.get("oracle_variant") for t in self.trajectories)
        kept = ", ".join(f"{v}: {n}" for v, n in sorted(by_variant.items()))
        s = f"{len(self.trajectories)} oracle trajectories ({kept or 'none'}); {len(self.failures)} failed checks"
        if self.not_applicable:
            s += "; not applicable: " + ", ".join(f"{v}: {n}" for v, n in sorted(self.not_applicable.items()))
        return s


def _contains(outer: Sequence[float], inner: Sequence[float], tol: float = 1.0) -> bool:
    return (outer[0] <= inner[0] + tol and outer[1] <= inner[1] + tol and outer[2] >= inner[2] - tol
            and outer[3] >= inner[3] - tol)


def _check_reading(traj: Trajectory, turn_index: int, turn: OracleTurn, max_pixels: int) -> str | None:
    """A box the text read off an earlier image must hold the evidence, tightly, and the evidence must be visible
    there at the model's resolution."""
    back, pos = turn.reading_from
    obs = [i for i in range(turn_index) if traj.turns[i].role == "observation"]
    if len(obs) < back:
        return f"turn {turn_index} reads a box off an observation that does not exist"
    o = traj.turns[obs[-back]]
    step = traj.steps[o.step]
    images = step.result.images if step.result is not None else []
    if pos >= len(images) or images[pos].region is None:
        return f"turn {turn_index} reads a box off image {pos} of turn {obs[-back]}, which has no traced region"
    im = images[pos]
    rb, ev = tuple(im.region.box), tuple(traj.task.evidence[0].box)  # type: ignore[union-attr]
    given = traj.images[0].array.shape
    frame = (int(given[1]), int(given[0]))
    for op in im.region.ops:  # type: ignore[union-attr]  # a view of a turned image: bring the crop and the evidence into that image's frame
        if op in ORIENTATION_OPS:
            rb, ev, frame = map_box(rb, op, frame), map_box(ev, op, frame), output_size(frame, op)
    w, h = im.size
    sx, sy = w / (rb[2] - rb[0]), h / (rb[3] - rb[1])
    view = ((ev[0] - rb[0]) * sx, (ev[1] - rb[1]) * sy, (ev[2] - rb[0]) * sx, (ev[3] - rb[1]) * sy)
    r = turn.reading
    assert r is not None
    if not _contains(r, view, tol=1.5):
        return f"turn {turn_index} reads {list(r)} but the evidence is at {[round(v, 1) for v in view]} in that view"
    if (r[2] - r[0]) * (r[3] - r[1]) > 9 * max(1.0, (view[2] - view[0]) * (view[3] - view[1])):
        return f"turn {turn_index} reads {list(r)}, far larger than the evidence there {[round(v) for v in view]}"
    if seen_px(max(view[2] - view[0], view[3] - view[1]), (w, h), max_pixels) < LEGIBLE_PX:
        return f"turn {turn_index} reads a box off a view in which the evidence is too small to see"
    return None


def check_trajectory(traj: Trajectory, script: OracleScript, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """Why `traj` is not a faithful run of `script` (None when it is)."""
    task = traj.task
    if traj.finish_reason is not FinishReason.ANSWERED:
        return f"finished with {traj.finish_reason.value if traj.finish_reason else None} ({traj.error or ''})"
    if (traj.answer or "").strip() != answer_text(task):
        return f"answered {traj.answer!r}, expected {answer_text(task)!r}"
    code_turns = [t for t in script.turns if t.code is not None]
    if len(traj.steps) != len(code_turns):
        return f"{len(traj.steps)} code steps ran, the script has {len(code_turns)}"
    ops: set[str] = set()
    crops: list[tuple[float, ...]] = []
    for step, turn in zip(traj.steps, code_turns, strict=True):
        res = step.result
        if res is None:
            return f"step {step.index} did not run ({step.skipped})"
        if turn.expect_error:
            if res.status is not ExecStatus.ERROR:
                return f"step {step.index} was meant to fail but ended {res.status.value}"
            continue
        if res.status is not ExecStatus.OK:
            err = f"{res.error.type}: {res.error.message}" if res.error else res.stderr[-200:]
            return f"step {step.index} ended {res.status.value}: {err}"
        ops |= res.ops_used()
        crops += [tuple(o.box) for o in res.ops if o.op == "crop" and o.box is not None and o.input_index in (0, None)]
        crops += [tuple(im.region.box) for im in res.images if im.region is not None and "crop" in im.region.ops]
    given = traj.images[0].array.shape if traj.images else None
    if given is not None:
        for c in crops:
            if (c[2] - c[0]) * (c[3] - c[1]) > MAX_CROP_SHARE * given[0] * given[1] + 1:
                return f"a crop {[round(v) for v in c]} covers most of the {given[1]}x{given[0]} image: it zooms nothing"
    missing = script.expected_ops - ops
    if missing:
        return f"the operation trace lacks {sorted(missing)} (traced: {sorted(ops)})"
    if script.final_crop is not None and task.evidence:
        ev = task.evidence[0].box
        if not any(_contains(c, ev) for c in crops):
            return f"no traced crop covers the evidence box {list(ev)} (traced crops: {[list(c) for c in crops]})"
    assistant = [i for i, t in enumerate(traj.turns) if t.role == "assistant"]
    allowed: dict[int, set[int]] = {}
    for n, turn in enumerate(script.turns):
        if turn.reading is not None:
            problem = _check_reading(traj, assistant[n], turn, max_pixels)
            if problem:
                return problem
            allowed[assistant[n]] = set(turn.reading)
    problems = grounding_problems(traj, answer_text(task), readings=allowed)
    if problems:
        return "not grounded: " + "; ".join(problems)
    return None


async def run_oracle_episodes(tasks: Sequence[Task], *, protocol: Any, pool: Any, variants: Sequence[str] = VARIANTS,
                              limits: Any = None, seed: int = 0, max_concurrent: int | None = 4,
                              progress: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS
                              ) -> tuple[list[Trajectory], Counter[str]]:
    """Every applicable variant of every task through the episode loop, in task order; each trajectory's
    `metadata["oracle_check"]` is None when it is a faithful run of its script, else the reason. Also returns how
    many tasks each variant did not apply to."""
    from rollout.loop import EpisodeLimits, run_episodes
    from rollout.scripted import ScriptedPolicy

    limits = limits or EpisodeLimits(max_turns=10)
    not_applicable: Counter[str] = Counter()
    out: list[Trajectory] = []
    for variant in variants:
        check_variant(variant)
        scripts: dict[str, OracleScript] = {}
        for task in tasks:
            var = protocol.image_names(len(task.images))[0]
            try:
                scripts[task.id] = oracle_script(task, variant, image_var=var, seed=seed, max_pixels=max_pixels)
            except OracleUnavailable:
                not_applicable[variant] += 1
        chosen = [t for t in tasks if t.id in scripts]
        if not chosen:
            continue
        policy = ScriptedPolicy({tid: s.render(protocol) for tid, s in scripts.items()})
        trajs = await run_episodes(chosen, policy, protocol=protocol, pool=pool, limits=limits,
                                   group_prefix=f"oracle-{variant}/", max_concurrent=max_concurrent,
                                   progress=progress, metadata={"teacher": "oracle", "oracle_variant": variant})
        for traj in trajs:
            traj.metadata["task_type"] = traj.task.metadata.get("task_type", traj.task.source)
            traj.metadata["oracle_check"] = check_trajectory(traj, scripts[traj.task.id], max_pixels)
        out.extend(trajs)
    order = {t.id: i for i, t in enumerate(tasks)}
    out.sort(key=lambda tr: order[tr.task.id])
    return out, not_applicable


async def run_oracle(tasks: Sequence[Task], *, protocol: Any, pool: Any, variants: Sequence[str] = VARIANTS,
                     limits: Any = None, seed: int = 0, max_concurrent: int | None = 4, progress: bool = True,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> OracleResult:
    """Run every applicable variant of every task; keep the trajectories that check out, report the others."""
    trajs, not_applicable = await run_oracle_episodes(tasks, protocol=protocol, pool=pool, variants=variants,
                                                      limits=limits, seed=seed, max_concurrent=max_concurrent,
                                                      progress=progress, max_pixels=max_pixels)
    result = OracleResult(not_applicable=not_applicable)
    for traj in trajs:
        reason = traj.metadata["oracle_check"]
        if reason is None:
            result.trajectories.append(traj)
        else:
            logger.warning("oracle %s for %s failed its check: %s", traj.metadata["oracle_variant"], traj.task.id,
                           reason)
            result.failures.append(OracleFailure(traj.task.id, traj.metadata["oracle_variant"], reason))
    return result


def build_oracle_trajectories(tasks: Sequence[Task], *, protocol: Any, pool: Any, variants: Sequence[str] = VARIANTS,
                              limits: Any = None, seed: int = 0, max_concurrent: int | None = 4,
                              progress: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS) -> OracleResult:
    """Synchronous `run_oracle`."""
    return asyncio.run(run_oracle(tasks, protocol=protocol, pool=pool, variants=variants, limits=limits, seed=seed,
                                  max_concurrent=max_concurrent, progress=progress, max_pixels=max_pixels))
