"""Faithfulness of tool use, the CodeV protocol (docs/methods.md, CodeV / TAPO): do the intermediate tool
outputs actually contain the queried evidence?

Per tool output (every image a code step showed): faithful or not.

- rule-based (`mode: rule`, needs evidence boxes): the output's traced region (original pixel coordinates) must
  contain the evidence, coverage = |ev & region| / |ev| >= `min_coverage`, and the evidence must be the main
  focus, focus = |ev & region| / |region| >= `min_focus`. An output the sandbox could not trace back to an input
  image, or one that is an input shown unchanged, is not faithful (counted as `untraced` / `unchanged`);
- judge-based (`mode: judge`): a judge sees the question (and the evidence's label) with the output image and
  answers `FAITHFUL: 1` only if the needed object is clearly visible and the main focus;
- `mode: auto`: rules when the task has evidence boxes, the judge otherwise (when configured).

Per sample: `any_faithful` (any output faithful; a sample without outputs is not faithful). Samples without
evidence (rules) are not applicable; samples whose judge calls failed (and have no faithful output) are
`failed` and left out. Over a batch: the 2x2 table against answer correctness, P(correct | faithful),
P(faithful | correct) (the number CodeV reports for peers), and the faithful rate; `to_metrics()` gives the
`faithfulness/*` keys logged during RL and printed by evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from rewards.context import ScoringContext
from rewards.evidence import match_evidence
from rewards.judge import JudgeConfig, get_judge, image_part, parse_tagged_number, text_part
from rewards.params import ComponentParams, OpsSource
from rollout.trajectory import Trajectory

FAITHFULNESS_JUDGE_SYSTEM = (
    "You check whether an image produced by a visual tool (for example a crop or a rotated view) contains the "
    "evidence needed to answer a question about the original image. Label 1 only if the needed object or text is "
    "clearly visible and is the main focus of the image; label 0 if it is absent, cut off, too small to read, or "
    "lost in a large cluttered view. End your reply with one line: 'FAITHFUL: 1' or 'FAITHFUL: 0'."
)


class FaithfulnessParams(ComponentParams):
    mode: Literal["rule", "judge", "auto"] = "rule"
    judge: JudgeConfig | None = None
    min_coverage: float = Field(0.8, gt=0.0, le=1.0, description="fraction of the evidence inside the output")
    min_focus: float = Field(0.04, ge=0.0, le=1.0, description="fraction of the output taken by the evidence")
    ops_source: OpsSource = "auto"


@dataclass
class OutputFaithfulness:
    """One tool output's label: `faithful` (None when its judge call failed), how it was decided, the ratios."""

    step: int
    output: int
    faithful: bool | None
    method: Literal["rule", "judge", "untraced", "unchanged"]
    coverage: float | None = None
    focus: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "output": self.output, "faithful": self.faithful, "method": self.method,
                "coverage": self.coverage, "focus": self.focus, "error": self.error}


@dataclass
class SampleFaithfulness:
    """One trajectory: its outputs' labels, `any_faithful` (None when n/a or failed) and answer correctness."""

    trajectory_id: str
    applicable: bool
    outputs: list[OutputFaithfulness] = field(default_factory=list)
    correct: bool | None = None

    @property
    def failed(self) -> bool:
        return self.applicable and any(o.faithful is None for o in self.outputs) and not any(o.faithful for o in self.outputs)

    @property
    def any_faithful(self) -> bool | None:
        if not self.applicable or self.failed:
            return None
        return any(bool(o.faithful) for o in self.outputs)

    def errors(self) -> list[str]:
        return [o.error for o in self.outputs if o.error]


@dataclass
class FaithfulnessReport:
    """A batch's faithfulness (see the module docstring)."""

    samples: list[SampleFaithfulness]

    def counted(self) -> list[SampleFaithfulness]:
        return [s for s in self.samples if s.any_faithful is not None and s.correct is not None]

    def table(self) -> dict[str, int]:
        """The 2x2 table: faithful/unfaithful x correct/wrong (applicable, non-failed samples)."""
        t = {"faithful_correct": 0, "faithful_wrong": 0, "unfaithful_correct": 0, "unfaithful_wrong": 0}
        for s in self.counted():
            t[f"{'faithful' if s.any_faithful else 'unfaithful'}_{'correct' if s.correct else 'wrong'}"] += 1
        return t

    def p_correct_given_faithful(self) -> float | None:
        t = self.table()
        n = t["faithful_correct"] + t["faithful_wrong"]
        return t["faithful_correct"] / n if n else None

    def p_faithful_given_correct(self) -> float | None:
        t = self.table()
        n = t["faithful_correct"] + t["unfaithful_correct"]
        return t["faithful_correct"] / n if n else None

    def faithful_rate(self) -> float | None:
        c = self.counted()
        return sum(bool(s.any_faithful) for s in c) / len(c) if c else None

    def to_metrics(self, prefix: str = "faithfulness/") -> dict[str, float]:
        """Scalar metrics; ratios whose denominator is 0 are left out."""
        t = self.table()
        outputs = [o for s in self.samples if s.applicable for o in s.outputs]
        m: dict[str, float] = {f"{prefix}{k}": float(v) for k, v in t.items()}
        m[f"{prefix}applicable"] = float(sum(s.applicable for s in self.samples))
        m[f"{prefix}failed"] = float(sum(s.failed for s in self.samples))
        m[f"{prefix}outputs"] = float(len(outputs))
        m[f"{prefix}untraced_outputs"] = float(sum(o.method == "untraced" for o in outputs))
        for key, value in (("any_faithful_rate", self.faithful_rate()),
                           ("p_correct_given_faithful", self.p_correct_given_faithful()),
                           ("p_faithful_given_correct", self.p_faithful_given_correct())):
            if value is not None:
                m[f"{prefix}{key}"] = value
        labelled = [o for o in outputs if o.faithful is not None]
        if labelled:
            m[f"{prefix}output_faithful_rate"] = sum(bool(o.faithful) for o in labelled) / len(labelled)
        return m

    def format_table(self) -> str:
        """The 2x2 table as text (evaluation reports)."""
        t = self.table()
        pcf, pfc = self.p_correct_given_faithful(), self.p_faithful_given_correct()

        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        return "\n".join([
            f"{'':12}{'correct':>9}{'wrong':>9}",
            f"{'faithful':12}{t['faithful_correct']:>9}{t['faithful_wrong']:>9}",
            f"{'unfaithful':12}{t['unfaithful_correct']:>9}{t['unfaithful_wrong']:>9}",
            f"P(correct | faithful) = {fmt(pcf)}   P(faithful | correct) = {fmt(pfc)}",
        ])


def _uses_judge(traj: Trajectory, params: FaithfulnessParams) -> bool | None:
    """True: judge; False: rules; None: not applicable."""
    if params.mode == "rule":
        return False if traj.task.evidence else None
    if params.mode == "judge":
        return True if params.judge is not None else None
    if traj.task.evidence:
        return False
    return True if params.judge is not None else None


def faithfulness_judge_messages(traj: Trajectory, image: Any, max_side: int) -> list[dict[str, Any]]:
    labels = [ev.label for ev in traj.task.evidence if ev.label]
    target = f"\nEvidence to look for: {', '.join(labels)}" if labels else ""
    return [{"role": "system", "content": FAITHFULNESS_JUDGE_SYSTEM},
            {"role": "user", "content": [text_part(f"Question: {traj.task.question}{target}\nTool output:"),
                                         image_part(image, max_side),
                                         text_part("Is the needed evidence clearly visible and the main focus?")]}]


def evaluate_faithfulness(trajectories: Sequence[Trajectory], params: FaithfulnessParams | None = None, *,
                          correct: Sequence[bool | None] | None = None,
                          ctx: ScoringContext | None = None) -> FaithfulnessReport:
    """Label every tool output of every trajectory and tabulate against correctness (`correct`, else the
    context's answer check, rule-based by default)."""
    params = params or FaithfulnessParams()
    ctx = ctx or ScoringContext()
    samples: list[SampleFaithfulness] = []
    pending: list[tuple[OutputFaithfulness, list[dict[str, Any]]]] = []
    for k, traj in enumerate(trajectories):
        if correct is not None:
            ok = correct[k]
        else:
            try:
                ok = ctx.correct(traj)
            except Exception:  # noqa: BLE001 - a failed answer judge leaves correctness unknown
                ok = None
        judge = _uses_judge(traj, params)
        sample = SampleFaithfulness(traj.id, judge is not None, correct=ok)
        samples.append(sample)
        if judge is None:
            continue
        sizes = ctx.sizes(traj)
        for use in ctx.tool_use(traj, params.ops_source):
            if not use.ran:
                continue
            result = traj.steps[use.index].result
            for out in use.outputs:
                if judge:
                    label = OutputFaithfulness(use.index, out.index, None, "judge")
                    assert params.judge is not None and result is not None
                    pending.append((label, faithfulness_judge_messages(traj, result.images[out.index].array,
                                                                       params.judge.image_max_side)))
                elif out.region is None:
                    label = OutputFaithfulness(use.index, out.index, False, "untraced")
                elif not out.region.ops:
                    label = OutputFaithfulness(use.index, out.index, False, "unchanged")
                else:
                    m = match_evidence(out.region.input_index, tuple(out.region.box), traj.task.evidence, sizes)  # type: ignore[arg-type]
                    if m is None:
                        label = OutputFaithfulness(use.index, out.index, False, "rule", 0.0, 0.0)
                    else:
                        label = OutputFaithfulness(use.index, out.index,
                                                   m.coverage >= params.min_coverage and m.focus >= params.min_focus,
                                                   "rule", m.coverage, m.focus)
                sample.outputs.append(label)
    if pending:
        assert params.judge is not None
        replies = get_judge(params.judge).complete_many([msgs for _, msgs in pending])
        for (label, _), reply in zip(pending, replies, strict=True):
            if not reply.ok:
                label.error = reply.error
                continue
            try:
                v = parse_tagged_number(reply.text or "", "FAITHFUL", low=0, high=1)
                if v not in (0.0, 1.0):
                    raise ValueError(f"FAITHFUL {v} is not 0 or 1")
                label.faithful = v == 1.0
            except ValueError as exc:
                label.error = f"faithfulness judge: {exc}"
    return FaithfulnessReport(samples)
