"""Answer accuracy: `answer_accuracy` (r_acc of CodeVision, l_acc * r_acc of TAPO, the
acc term of DeepEyes and PyVision-RL).

    r_acc = match(Trajectory.answer, Task.answer) in [0, 1]          (rules: `rewards.answers`)

Optionally a judge (OpenAI-compatible endpoint) re-checks answers that the rules call wrong, for the answer types
in `judge_types` (default: free text). The judge replies `VERDICT: 1` or `VERDICT: 0`; anything else, or a
failed call, records the component as failed for that trajectory (never a silent 0). This component's check is
also the reward set's definition of "correct" for the components that need one (see `rewards.context`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from rewards.answers import AnswerMatch, AnswerMatchParams, clean_answer, match_answer
from rewards.component import ComponentValue, RewardComponent
from rewards.context import ScoringContext
from rewards.errors import JudgeFailed
from rewards.judge import JudgeConfig, JudgeReply, get_judge, parse_tagged_number, text_part
from rewards.registry import register
from rewards.codevision_scoring import codevision_equivalent
from rewards.released_text import AnswerRule, pick_answer
from rollout.task import AnswerType
from rollout.trajectory import Trajectory

ANSWER_JUDGE_SYSTEM = (
    "You grade answers to visual questions. Decide whether the model's answer states the same thing as the "
    "reference answer (ignore wording, formatting and units written differently; a partially correct or hedged "
    "answer is not equivalent). End your reply with one line: 'VERDICT: 1' if equivalent, 'VERDICT: 0' if not."
)


class AccuracyParams(AnswerMatchParams):
    """Rule matching (see `rewards.answers`) plus an optional judge for answers the rules reject. `answer_rule`:
    which final answer is scored (`protocol`: the one the protocol extracted; the released rewards' own readings of
    the response text, `rewards.released_text`). `max_answer_chars`: an answer this long or longer scores 0 (it
    still counts as correct for the components that ask, as in PyVision-RL's `is_answer_right`)."""

    judge: JudgeConfig | None = None
    judge_types: list[AnswerType] = Field(default_factory=lambda: ["text"])  # type: ignore[arg-type]
    answer_rule: AnswerRule = "protocol"
    max_answer_chars: int | None = Field(None, gt=0)
    rules: Literal["package", "codevision"] = Field(
        "package", description="the rule that decides before any judge: this package's (`rewards.answers`) or "
                               "CodeVision's released `are_answers_equivalent` (rewards.released_text)")


def answer_judge_messages(traj: Trajectory, answer: str | None = None) -> list[dict]:
    task = traj.task
    ref = str(task.answer)
    if task.answer_type == "choice" and task.choices:
        k = ord(ref.strip().upper()) - ord("A")
        if 0 <= k < len(task.choices):
            ref = f"{ref} ({task.choices[k]})"
    given = traj.answer if answer is None else answer
    user = f"Question: {task.question}\nReference answer: {ref}\nModel answer: {clean_answer(given or '')}"
    return [{"role": "system", "content": ANSWER_JUDGE_SYSTEM}, {"role": "user", "content": [text_part(user)]}]


class JudgedAnswerChecker:
    """Rules first; the judge for rule misses of the configured types (see the module docstring)."""

    def __init__(self, params: AccuracyParams) -> None:
        self.params = params
        self.rule_params = AnswerMatchParams(**{k: getattr(params, k) for k in AnswerMatchParams.model_fields})

    def answer(self, traj: Trajectory) -> str | None:
        """The final answer this checker scores (`answer_rule`)."""
        return pick_answer(traj, self.params.answer_rule)

    def _needs_judge(self, traj: Trajectory, m: AnswerMatch) -> bool:
        return (self.params.judge is not None and not m.correct and m.predicted is not None
                and m.method != "no_answer" and traj.task.answer_type in self.params.judge_types)

    def _from_reply(self, m: AnswerMatch, reply: JudgeReply) -> AnswerMatch:
        if not reply.ok:
            raise JudgeFailed(reply.error or "answer judge failed")
        try:
            verdict = parse_tagged_number(reply.text or "", "VERDICT", low=0, high=1)
        except ValueError as exc:
            raise JudgeFailed(f"answer judge: {exc}") from None
        if verdict not in (0.0, 1.0):
            raise JudgeFailed(f"answer judge verdict {verdict} is not 0 or 1")
        return AnswerMatch(verdict, verdict == 1.0, "judge", m.predicted)

    def match(self, traj: Trajectory) -> AnswerMatch:
        """The rule-based verdict (`rules`)."""
        answer = self.answer(traj)
        if self.params.rules == "package":
            return match_answer(answer, traj.task, self.rule_params)
        if answer is None or not answer.strip():
            return AnswerMatch(0.0, False, "no_answer", answer)
        ok = codevision_equivalent(answer, str(traj.task.answer))
        return AnswerMatch(float(ok), ok, "codevision_rule", answer)

    def check(self, traj: Trajectory) -> AnswerMatch:
        m = self.match(traj)
        if not self._needs_judge(traj, m):
            return m
        assert self.params.judge is not None
        return self._from_reply(m, get_judge(self.params.judge).complete(answer_judge_messages(traj, m.predicted)))

    def check_many(self, trajs: Sequence[Trajectory]) -> list[AnswerMatch | JudgeFailed]:
        rules = [self.match(t) for t in trajs]
        todo = [i for i, (t, m) in enumerate(zip(trajs, rules, strict=True)) if self._needs_judge(t, m)]
        out: list[AnswerMatch | JudgeFailed] = list(rules)
        if todo:
            assert self.params.judge is not None
            replies = get_judge(self.params.judge).complete_many([answer_judge_messages(trajs[i], rules[i].predicted)
                                                                  for i in todo])
            for i, reply in zip(todo, replies, strict=True):
                try:
                    out[i] = self._from_reply(rules[i], reply)
                except JudgeFailed as exc:
                    out[i] = exc
        return out


@register
class AnswerAccuracy(RewardComponent):
    name = "answer_accuracy"
    scope = "episode"
    Params = AccuracyParams
    source = "r_acc of the CodeVision paper, the TAPO paper, DeepEyes and PyVision-RL"
    formula = "r_acc = match(answer, gold): choice letter/option, number within tolerance, normalised text, box IoU >= t (or IoU)"
    params: AccuracyParams

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._checker = JudgedAnswerChecker(self.params)

    def answer_checker(self) -> JudgedAnswerChecker:
        return self._checker

    def check(self, traj: Trajectory, ctx: ScoringContext) -> AnswerMatch:
        """This component's answer check (the context's memo when the set uses this component's checker)."""
        if ctx.answer_checker is self._checker:
            return ctx.answer(traj)
        return self._checker.check(traj)

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        m = self.check(traj, ctx)
        limit = self.params.max_answer_chars
        if limit is not None and m.predicted is not None and len(m.predicted) >= limit:
            return ComponentValue(value=0.0, info={"method": m.method, "correct": m.correct, "too_long": True})
        return ComponentValue(value=m.score, info={"method": m.method, "correct": m.correct})
