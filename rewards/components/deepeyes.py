"""DeepEyes reward as released (Visual-Agent/DeepEyes, verl/utils/reward_score/vl_agent.py `compute_score`):

    R = 0.8 acc + 0.2 format + 1.2 tool,   format = -1 on a format error else 0,
                                           tool = 1[an image came back from a tool and acc > 0.5]

and an answer of 1000 characters or more scores acc 0 and is a format error ("Penalize for model trying to
predict longer answer to hack llm-as-judge"). Here, with the package's sign convention (penalties return a
magnitude and carry a negative weight):

    deepeyes_accuracy     r_acc, 0 when the answer text has >= 1000 characters          (weight 0.8)
    deepeyes_format_error 1[format error or answer text >= 1000 characters]              (weight -0.2)
    deepeyes_tool_bonus   1[a code step returned at least one image and correct]         (weight 1.2)

The released code reads the decoded response (`rewards.released_text`, here every turn's text in order): the
scored answer is the text after the last `<answer>` up to the next `</answer>` (`answer_rule: last`; the protocol
keeps the first of two answers); the format error is unbalanced `<think>` tags or unbalanced answer tags after the
last `</think>` (`deepeyes_format_error`; the vision-token balance has nothing to count in recorded text). A
missing answer is not a format error; its "answer text" is then the whole response (`predict_str.split("<answer>")
[-1]`), which is what the length rule measures and what is graded (the released code sends it to its judge; here
the rules match it, and a judge can be configured). A tool counts as used only when an image came back (the released
`count_vision_1` counts image placeholders in the response), so a call that printed text only, or failed before
showing anything, earns no tool bonus.
"""

from __future__ import annotations

from pydantic import Field

from rewards.component import ComponentValue, RewardComponent
from rewards.components.accuracy import AccuracyParams, AnswerAccuracy
from rewards.context import ScoringContext
from rewards.params import ComponentParams
from rewards.registry import register
from rewards.released_text import AnswerRule, deepeyes_format_error, last_answer_text, response_text
from rollout.trajectory import Trajectory

MAX_ANSWER_CHARS = 1000


def answer_text(traj: Trajectory) -> str:
    """The released `answer_text`: after the last `<answer>` up to the next `</answer>`; the whole response when
    there is no answer tag."""
    return last_answer_text(response_text(traj))


class DeepEyesAccuracyParams(AccuracyParams):
    max_answer_chars: int = Field(MAX_ANSWER_CHARS, gt=0, description="answers this long or longer score 0")
    answer_rule: AnswerRule = "last"


@register
class DeepEyesAccuracy(AnswerAccuracy):
    """DeepEyes acc_reward with the released length rule (vl_agent.py `compute_score`: `if len(answer_text) >=
    1000: acc_reward = 0.0`)."""

    name = "deepeyes_accuracy"
    Params = DeepEyesAccuracyParams
    source = "DeepEyes released code: vl_agent.py::compute_score (acc_reward, length rule)"
    formula = "r_acc, 0 when the answer text has >= 1000 characters (weight 0.8)"
    params: DeepEyesAccuracyParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        m = self.check(traj, ctx)
        too_long = len(answer_text(traj)) >= self.params.max_answer_chars
        return ComponentValue(value=0.0 if too_long else m.score,
                              info={"method": m.method, "correct": m.correct and not too_long, "too_long": too_long})


class DeepEyesFormatParams(ComponentParams):
    bad_events: list[str] = Field(default_factory=list,
                                  description="protocol events that are also a format error (released: none; the "
                                              "tag balance of the response text decides)")
    max_answer_chars: int = Field(MAX_ANSWER_CHARS, gt=0, description="answers this long or longer are an error")


@register
class DeepEyesFormatError(RewardComponent):
    """DeepEyes format term (vl_agent.py `compute_score`: `format_reward = -1.0 if is_format_error else 0.0`, weight
    0.2): here the 0/1 error indicator with weight -0.2."""

    name = "deepeyes_format_error"
    scope = "episode"
    Params = DeepEyesFormatParams
    source = "DeepEyes released code: vl_agent.py::compute_score (format_reward = -1 on a format error, else 0)"
    formula = "1[unbalanced think / answer tags or answer text >= 1000 characters] (weight -0.2)"
    params: DeepEyesFormatParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        bad = set(self.params.bad_events)
        problems = sorted({e for t in traj.assistant_turns() for e in t.events if e in bad})
        if deepeyes_format_error(response_text(traj)):
            problems.append("unbalanced_tags")
        if len(answer_text(traj)) >= self.params.max_answer_chars:
            problems.append("answer_too_long")
        return ComponentValue(value=1.0 if problems else 0.0, info={"problems": problems} if problems else {})


class DeepEyesToolParams(ComponentParams):
    require_image: bool = Field(True, description="a tool counts as used only when an image came back (released); "
                                                  "False: any executed code step")
    max_answer_chars: int = Field(MAX_ANSWER_CHARS, gt=0, description="answers this long score acc 0, so no bonus")


@register
class DeepEyesToolBonus(RewardComponent):
    """DeepEyes tool reward (vl_agent.py `compute_score`: `tool_reward = 1.0 if count_vision_1 > 0 and acc_reward >
    0.5 else 0.0`, weight 1.2)."""

    name = "deepeyes_tool_bonus"
    scope = "episode"
    Params = DeepEyesToolParams
    source = "DeepEyes released code: vl_agent.py::compute_score (tool_reward)"
    formula = "1[a code step returned an image and correct] (weight 1.2)"
    params: DeepEyesToolParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        executed = [s.result for s in traj.steps if s.result is not None]
        used = any(r.images for r in executed) if self.params.require_image else bool(executed)
        if not used or len(answer_text(traj)) >= self.params.max_answer_chars:
            return 0.0
        return 1.0 if ctx.correct(traj) else 0.0
