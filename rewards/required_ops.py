"""CodeVision's strategy quantities: a trajectory's tool use against the task's must-use set S_req and its
ground-truth box (CodeVision paper, and agent_loop.py `_mandatory_reward` of its released code).

- `step_crop_ious`: per step, the best IoU of that step's crops with a ground-truth (evidence) box;
- `must_use_credits` (paper): per step t, each must-use op of S_req \\ {crop} earns 1/|S_req| the first time
  it is used correctly (in a block that ran to the end), and crop earns (IoU_t - max IoU before t)^+ / |S_req|,
  so credit is paid where it was earned and only for improvement;
- `mandatory_score` (released code): r_mand = min(1, |(S_req \\ {crop}) & used| / |S_req|
  + [crop in S_req and used] * max IoU / |S_req|).

Summed over steps, the paper's credits equal the code's r_mand (before the cap, which they never exceed): the
variants differ in *where* the reward lands (each step vs. the end) and in what they do with it (the code gates
accuracy by it; see `rewards.components.codevision_code`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards.evidence import best_iou
from rewards.tool_use import FailedOps, StepToolUse, counted, used_ops
from rollout.task import Task
from sandbox.result import CORE_OPS, ORIENTATION_OPS


def required_set(task: Task) -> set[str]:
    """S_req: the task's must-use operations."""
    return set(task.required_ops)


def crop_needs_box(task: Task) -> bool:
    """Crop is required but the task has no evidence box: crop credit cannot be judged (n/a, never 0)."""
    return "crop" in required_set(task) and not task.evidence


def step_crop_ious(steps: Sequence[StepToolUse], task: Task, sizes: Sequence[tuple[int, int]] | None,
                   include_failed: bool = False, failed_ops: FailedOps = "executed") -> list[float]:
    """Best IoU of each step's crops with any evidence box (0 for steps that do not count or made no crop).
    Boxes read by the released CodeVision detector are compared as written (the released `_best_crop_iou` does not
    clip them to the image)."""
    out = []
    for s in steps:
        if not (s.ran if include_failed else s.ok):
            out.append(0.0)
            continue
        frame = None if s.source == "released" else sizes
        out.append(max((best_iou(i, box, task.evidence, frame) for i, box in s.crop_boxes(failed_ops)),
                       default=0.0))
    return out


def max_crop_iou(steps: Sequence[StepToolUse], task: Task, sizes: Sequence[tuple[int, int]] | None,
                 include_failed: bool = False, failed_ops: FailedOps = "executed") -> float:
    return max(step_crop_ious(steps, task, sizes, include_failed, failed_ops), default=0.0)


def must_use_credits(steps: Sequence[StepToolUse], task: Task, sizes: Sequence[tuple[int, int]] | None,
                     include_failed: bool = False, failed_ops: FailedOps = "executed") -> list[float | None]:
    """The paper's per-step must-use credit (see the module docstring); all zeros when S_req is empty. Steps
    that were never executed are not tool calls: None (n/a, no share)."""
    req = required_set(task)
    k = len(req)
    if k == 0:
        return [0.0 if s.ran else None for s in steps]
    ious = step_crop_ious(steps, task, sizes, include_failed, failed_ops)
    credited: set[str] = set()
    best = 0.0
    out: list[float | None] = []
    for s, iou_t in zip(steps, ious, strict=True):
        if not s.ran:
            out.append(None)
            continue
        credit = 0.0
        if s.ran if include_failed else s.ok:
            for op in sorted((req - {"crop"}) & s.op_names(failed_ops) - credited):
                credit += 1.0 / k
                credited.add(op)
        if "crop" in req and iou_t > best:
            credit += (iou_t - best) / k
            best = iou_t
        out.append(credit)
    return out


def mandatory_score(steps: Sequence[StepToolUse], task: Task, sizes: Sequence[tuple[int, int]] | None,
                    include_failed: bool = False, failed_ops: FailedOps = "executed") -> float:
    """The released code's r_mand (agent_loop.py `_mandatory_reward`; see the module docstring); 0 when S_req
    is empty."""
    req = required_set(task)
    if not req:
        return 0.0
    used = used_ops(steps, include_failed, failed_ops)
    score = len((req - {"crop"}) & used) / len(req)
    if "crop" in req and "crop" in used:
        score += max_crop_iou(steps, task, sizes, include_failed, failed_ops) / len(req)
    return min(1.0, score)


def core_ops_used(steps: Sequence[StepToolUse], include_failed: bool = False,
                  failed_ops: FailedOps = "executed") -> set[str]:
    """Used ops among the six core ops."""
    return used_ops(steps, include_failed, failed_ops) & set(CORE_OPS)


def orientation_ops_used(steps: Sequence[StepToolUse], include_failed: bool = False,
                         failed_ops: FailedOps = "executed") -> set[str]:
    return used_ops(steps, include_failed, failed_ops) & set(ORIENTATION_OPS)


def first_use_order(steps: Sequence[StepToolUse], ops: set[str], include_failed: bool = False,
                    failed_ops: FailedOps = "executed") -> list[str]:
    """The ops of `ops` in the order of their first use (step order, then the order ops ran within a step)."""
    order: list[str] = []
    for s in counted(steps, include_failed):
        for o in s.all_ops(failed_ops):
            if o.op in ops and o.op not in order:
                order.append(o.op)
    return order
