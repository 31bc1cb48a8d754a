"""`faithful_crop`: the CodeV faithfulness of one trajectory as a component (docs/methods.md, CodeV), so it
is logged as `reward/faithful_crop/mean` during RL (weight 0 in the shipped sets) or trained on if you wish.

    value = 1[any tool output contains the evidence as its main focus], None when not applicable

Labels come from `rewards.faithfulness` (rules from evidence boxes; judge optional). A sample whose judge calls
failed is recorded as failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards.component import ComponentValue, RewardComponent
from rewards.context import ScoringContext
from rewards.errors import ComponentError
from rewards.faithfulness import FaithfulnessParams, evaluate_faithfulness
from rewards.registry import register
from rollout.trajectory import Trajectory


@register
class FaithfulCrop(RewardComponent):
    name = "faithful_crop"
    scope = "episode"
    Params = FaithfulnessParams
    source = "CodeV faithfulness protocol (docs/methods.md)"
    formula = "1[any tool output has coverage >= 0.8 of the evidence and focus >= 0.04] (n/a without evidence)"
    params: FaithfulnessParams

    def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        return self.score_batch([traj], [[0]], ctx)[0]

    def score_batch(self, trajs: Sequence[Trajectory], groups: Sequence[Sequence[int]],
                    ctx: ScoringContext) -> list[ComponentValue]:
        try:
            report = evaluate_faithfulness(trajs, self.params, correct=[None] * len(trajs), ctx=ctx)
        except Exception as exc:
            raise ComponentError(self.key, [t.id for t in trajs], exc) from exc
        out = []
        for s in report.samples:
            info = {"outputs": [o.to_dict() for o in s.outputs]} if s.outputs else {}
            if s.failed:
                out.append(ComponentValue.failed("; ".join(s.errors()) or "faithfulness judge failed", info=info))
            elif not s.applicable:
                out.append(ComponentValue(value=None))
            else:
                out.append(ComponentValue(value=1.0 if s.any_faithful else 0.0, info=info))
        return out
