"""Which image operations each code step used, where its crops looked, and what it showed.

Source of truth is the sandbox's operation trace (`ExecResult.ops`, `CapturedImage.region`): what really ran, with
crop boxes already mapped to the original image's coordinates. A step whose result carries no trace at all (an
older sandbox, or one that could not instrument the call) falls back to static analysis of its code
(`rewards.code_ops`); `ops_source` chooses (`auto`, `trace`, `code`, `released`). `released` reads every executed
block's code with CodeVision's released detector (`rewards.codevision_detector`): its op names, and its crop
boxes as the literal numbers of the code (input 0, never clipped or mapped), for failed blocks too (it parsed the
code before running it); shown images then carry no region.

Rules (shared by every component, so that "used" means the same thing everywhere):

- trace ops count only when they apply to data derived from an input image (`OpRecord.input_index` set): rotating
  a blank canvas is not using the rotate tool;
- static ops count whatever they apply to (the analysis cannot always tell), and for a block that raised, only
  ops on lines before the failing line (none when the line is unknown or the worker died);
- a step that was never run (`Step.result is None`, `Step.skipped` set: cut by the turn limit, the token limit or
  a sandbox failure) used nothing and is not a code call (`executed_calls`);
- `used_ops(..., include_failed=False)` counts steps that ran to the end only (a tool "used correctly");
  `include_failed=True` also counts blocks that ran and failed. For those, `failed_ops="executed"` takes the ops
  that ran before the failure (trace, or static ops before the failing line) and `failed_ops="written"` adds
  every op the block's code contains (`StepToolUse.written_ops`): what the released CodeVision code sees, since
  it parses ops from the code before running it (tool_agent_loop.py `_handle_processing_tools_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rewards.boxes import Box
from rewards.code_ops import analyse_code
from rewards.codevision_detector import detect
from rewards.params import OpsSource
from rollout.trajectory import Trajectory
from sandbox.result import ExecResult, ExecStatus, ImageRegion

FailedOps = Literal["executed", "written"]

DEFAULT_IMAGE_PREFIX = "image_clue_"


@dataclass(frozen=True)
class UsedOp:
    """An operation a step applied: name, input image (when known), crop box in original coordinates."""

    op: str
    input_index: int | None = None
    box: Box | None = None
    detail: str | None = None  # `convert`: the target mode ("L", "RGB") or OpenCV code name, when known


@dataclass(frozen=True)
class StepOutput:
    """An image a step showed: its position in the step, size (w, h), how it was captured, and where it comes
    from in an input image (`region`, None when untraced)."""

    index: int
    size: tuple[int, int]
    source: str
    region: ImageRegion | None


@dataclass
class StepToolUse:
    """One code step seen through its trace (or its code)."""

    index: int
    status: ExecStatus | None  # None: the step was never run
    source: Literal["trace", "code", "released", "none"]
    ops: list[UsedOp] = field(default_factory=list)
    outputs: list[StepOutput] = field(default_factory=list)
    error_type: str | None = None
    written_ops: list[UsedOp] = field(default_factory=list)  # failed blocks: every op in the code (static)

    @property
    def ran(self) -> bool:
        return self.status is not None

    @property
    def ok(self) -> bool:
        return self.status is ExecStatus.OK

    def all_ops(self, failed_ops: FailedOps = "executed") -> list[UsedOp]:
        """The step's ops; for a failed block with `failed_ops="written"` also every op its code contains."""
        if failed_ops == "written" and self.ran and not self.ok:
            return [*self.ops, *self.written_ops]
        return list(self.ops)

    def op_names(self, failed_ops: FailedOps = "executed") -> set[str]:
        return {o.op for o in self.all_ops(failed_ops)}

    def crop_boxes(self, failed_ops: FailedOps = "executed") -> list[tuple[int, Box]]:
        """(input index, box) of every crop this step made: crop ops with a box, and shown images whose
        region went through a crop (duplicates removed, order kept)."""
        out: list[tuple[int, Box]] = []
        for o in self.all_ops(failed_ops):
            if o.op == "crop" and o.box is not None and o.input_index is not None:
                out.append((o.input_index, o.box))
        for im in self.outputs:
            if im.region is not None and "crop" in im.region.ops:
                out.append((im.region.input_index, tuple(im.region.box)))  # type: ignore[arg-type]
        seen: set[tuple[int, Box]] = set()
        return [c for c in out if not (c in seen or seen.add(c))]  # type: ignore[func-returns-value]


def input_sizes(traj: Trajectory) -> list[tuple[int, int]] | None:
    """(width, height) of the input images, from the trajectory's stored inputs (None when absent)."""
    inputs = [im.size for im in traj.images if im.origin == "input"]
    return inputs if len(inputs) == len(traj.task.images) else None


def image_variable_names(traj: Trajectory) -> dict[str, int]:
    """The sandbox variables holding the input images under the trajectory's protocol (`image_clue_i` by default,
    `image` for CodeVision's single image): the protocol's own `image_names`, so rewards see what the model saw."""
    n = len(traj.task.images)
    try:
        from rollout.protocols import get_protocol

        names = get_protocol(traj.protocol).image_names(n)
    except ValueError:
        names = [f"{DEFAULT_IMAGE_PREFIX}{i}" for i in range(n)]
    return {name: i for i, name in enumerate(names)}


def _mode(params: dict[str, object]) -> str | None:
    mode = params.get("mode")
    return mode if isinstance(mode, str) else None


def has_trace(result: ExecResult) -> bool:
    """Whether the sandbox traced this block at all (any op record or any image with a region)."""
    return bool(result.ops) or any(im.region is not None for im in result.images)


def _static_step(code: str, result: ExecResult, names: dict[str, int],
                 sizes: list[tuple[int, int]] | None) -> tuple[list[UsedOp], list[ImageRegion | None]]:
    analysis = analyse_code(code, names, sizes)
    if result.status is ExecStatus.OK:
        limit = None
    elif result.status is ExecStatus.ERROR and result.error is not None and result.error.line is not None:
        limit = result.error.line
    else:
        return [], []
    ops = [UsedOp(o.op, o.input_index, o.box, o.detail) for o in analysis.ops if limit is None or o.line < limit]
    regions = [ImageRegion(s.input_index, s.region(), list(s.ops)) if s is not None and s.region() is not None else None  # type: ignore[arg-type]
               for s in analysis.shown]
    return ops, regions


def analyse_step(traj: Trajectory, index: int, source: OpsSource = "auto", *,
                 names: dict[str, int] | None = None, sizes: list[tuple[int, int]] | None = None) -> StepToolUse:
    """The tool use of step `index` of `traj` (see the module docstring for the rules)."""
    step = traj.steps[index]
    result = step.result
    if result is None:
        return StepToolUse(index, None, "none")
    if source == "released":
        found = detect(step.code)
        ops = [UsedOp(o) for o in found.ops if o != "crop"]
        ops += [UsedOp("crop", 0, box) for box in found.boxes]
        outputs = [StepOutput(k, im.size, im.source, None) for k, im in enumerate(result.images)]
        err = result.error.type if result.error is not None else None
        return StepToolUse(index, result.status, "released", ops, outputs, err)
    outputs = [StepOutput(k, im.size, im.source, im.region) for k, im in enumerate(result.images)]
    use_trace = source == "trace" or (source == "auto" and has_trace(result))
    err = result.error.type if result.error is not None else None
    names = names if names is not None else image_variable_names(traj)
    sizes = sizes if sizes is not None else input_sizes(traj)
    written: list[UsedOp] = []
    if result.status is not ExecStatus.OK:
        written = [UsedOp(o.op, o.input_index, o.box, o.detail) for o in analyse_code(step.code, names, sizes).ops]
    if use_trace:
        ops = [UsedOp(o.op, o.input_index, o.box, _mode(o.params)) for o in result.ops if o.input_index is not None]
        return StepToolUse(index, result.status, "trace", ops, outputs, err, written)
    ops, regions = _static_step(step.code, result, names, sizes)
    if outputs and all(o.region is None for o in outputs) and len(regions) == len(outputs):
        outputs = [StepOutput(o.index, o.size, o.source, r) for o, r in zip(outputs, regions, strict=True)]
    return StepToolUse(index, result.status, "code", ops, outputs, err, written)


def analyse_steps(traj: Trajectory, source: OpsSource = "auto") -> list[StepToolUse]:
    """`analyse_step` for every code step, in order."""
    names, sizes = image_variable_names(traj), input_sizes(traj)
    return [analyse_step(traj, i, source, names=names, sizes=sizes) for i in range(len(traj.steps))]


def counted(steps: Sequence[StepToolUse], include_failed: bool = False) -> list[StepToolUse]:
    """The steps whose ops count as uses: those that ran to the end (or, with include_failed, that ran)."""
    return [s for s in steps if (s.ran if include_failed else s.ok)]


def used_ops(steps: Sequence[StepToolUse], include_failed: bool = False,
             failed_ops: FailedOps = "executed") -> set[str]:
    """Names of all operations used over the trajectory (see the module docstring for `failed_ops`)."""
    out: set[str] = set()
    for s in counted(steps, include_failed):
        out |= s.op_names(failed_ops)
    return out


def tool_calls(steps: Sequence[StepToolUse], include_failed: bool = False) -> int:
    """How many code steps count as tool calls: those that ran to the end (or, with include_failed, all that
    ran at all)."""
    return len(counted(steps, include_failed))


def executed_calls(traj: Trajectory) -> int:
    """Code blocks that were executed (ok or failed): the released CodeVision `code_count` (success + error
    counts, tool_agent_loop.py `run`). Blocks never executed (`Step.result is None`: cut by the turn limit,
    the token limit or a sandbox failure) are not code calls."""
    return sum(1 for s in traj.steps if s.result is not None)
