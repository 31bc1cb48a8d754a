"""Format: `format` (r_fmt of the CodeVision paper; logged in the other sets). The released-code sets use the
released checks on the response text instead: `codevision_code_format` (CodeVision uvtr.py) and `codev_format`
(CodeV vl_agent.py), see `rewards.released_text`.

    r_fmt = 1 if the episode ended with an answer (finish reason in `finish_reasons`, answer extracted) and no
            assistant turn recorded a malformed-output event from `bad_events`, else 0

It reads what the protocol recorded (`Turn.events`, `Trajectory.answer`, `Trajectory.finish_reason`) instead of
re-parsing text, so it agrees with how the episode was actually run.
"""

from __future__ import annotations

from pydantic import Field

from rewards.component import ComponentValue, RewardComponent
from rewards.context import ScoringContext
from rewards.params import ComponentParams
from rewards.registry import register
from rollout.trajectory import Trajectory

DEFAULT_BAD_EVENTS = ("unclosed_code_block", "two_answers", "code_after_answer", "answer_after_code",
                      "unclosed_answer", "empty_answer", "empty_code_block", "no_code_no_answer", "no_answer")


class FormatParams(ComponentParams):
    bad_events: list[str] = Field(default_factory=lambda: list(DEFAULT_BAD_EVENTS))
    require_answer: bool = True
    finish_reasons: list[str] = Field(default_factory=lambda: ["answered"])


@register
class Format(RewardComponent):
    name = "format"
    scope = "episode"
    Params = FormatParams
    source = "CodeVision paper r_fmt (the released code's check is codevision_code_format)"
    formula = "r_fmt = 1[finished with an answer and no malformed-output event], else 0"
    params: FormatParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        problems = []
        finish = traj.finish_reason.value if traj.finish_reason is not None else None
        if finish not in self.params.finish_reasons:
            problems.append(f"finish:{finish}")
        if self.params.require_answer and not (traj.answer or "").strip():
            problems.append("no_answer")
        bad = set(self.params.bad_events)
        problems += [e for t in traj.assistant_turns() for e in t.events if e in bad]
        return ComponentValue(value=0.0 if problems else 1.0, info={"problems": problems} if problems else {})
