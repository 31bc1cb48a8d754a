"""`RewardSet`: an ordered list of weighted components that scores trajectories into `RewardBreakdown`s.

    rs = load_reward_set("configs/rewards/codevision.yaml")        # or RewardSet([...components...])
    breakdowns = rs.score(trajectories)                             # groups by Trajectory.group_id
    breakdowns[0].steps     # one reward per code step (placed on that step's tokens by the RL trainer)
    breakdowns[0].total     # episode + sum(steps)
    trajectories[0].reward  # the breakdown as a JSON dict (record=True)

Group components receive the rollouts of one task together: by default the trajectories sharing a `group_id`
(a trajectory without one is its own group); `groups=` (lists of indices) overrides that. Scoring only reads the
trajectories (and the judge), so a saved run can be re-scored under another set (`rewards.rescore`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from rewards.breakdown import ComponentScore, RewardBreakdown
from rewards.component import ComponentValue, RewardComponent
from rewards.context import AnswerChecker, ScoringContext
from rewards.errors import RewardConfigError
from rewards.registry import RESERVED_KEYS
from rollout.trajectory import Trajectory


def groups_by_id(trajs: Sequence[Trajectory]) -> list[list[int]]:
    """Indices grouped by `group_id` in order of first appearance; no group_id -> a group of one."""
    groups: dict[str, list[int]] = {}
    out: list[list[int]] = []
    for i, t in enumerate(trajs):
        if t.group_id is None:
            out.append([i])
        elif t.group_id in groups:
            groups[t.group_id].append(i)
        else:
            groups[t.group_id] = [i]
            out.append(groups[t.group_id])
    return out


def _check_partition(groups: Sequence[Sequence[int]], n: int) -> list[list[int]]:
    seen: set[int] = set()
    out = []
    for g in groups:
        for i in g:
            if not (0 <= i < n):
                raise ValueError(f"group index {i} is out of range for {n} trajectories")
            if i in seen:
                raise ValueError(f"trajectory index {i} is in more than one group")
            seen.add(i)
        out.append(list(g))
    if len(seen) != n:
        raise ValueError(f"groups cover {len(seen)} of {n} trajectories; every trajectory needs a group")
    return out


class RewardSet:
    """Weighted components scored together (see the module docstring)."""

    def __init__(self, components: Sequence[RewardComponent], *, name: str = "custom", description: str = "",
                 source: str | None = None) -> None:
        keys = [c.key for c in components]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise RewardConfigError(f"reward set {name!r}: component key(s) {dup} appear more than once; give "
                                    "repeated components distinct `label`s")
        bad = sorted(set(keys) & RESERVED_KEYS)
        if bad:
            raise RewardConfigError(f"reward set {name!r}: {bad} are reserved names; choose another label")
        self.components = list(components)
        self.name = name
        self.description = description
        self.source = source

    def __iter__(self) -> Iterator[RewardComponent]:
        return iter(self.components)

    def __len__(self) -> int:
        return len(self.components)

    def __getitem__(self, key: str) -> RewardComponent:
        for c in self.components:
            if c.key == key:
                return c
        raise KeyError(f"reward set {self.name!r} has no component {key!r}; it has: "
                       f"{', '.join(c.key for c in self.components)}")

    def __repr__(self) -> str:
        return f"RewardSet(name={self.name!r}, components={[c.key for c in self.components]})"

    def answer_checker(self) -> AnswerChecker | None:
        """The answer checker of the first component that defines one (the set's accuracy definition)."""
        for c in self.components:
            make = getattr(c, "answer_checker", None)
            if callable(make):
                return make()
        return None

    def context(self) -> ScoringContext:
        return ScoringContext(self.answer_checker())

    def score(self, trajectories: Sequence[Trajectory], groups: Sequence[Sequence[int]] | None = None, *,
              record: bool = True, ctx: ScoringContext | None = None) -> list[RewardBreakdown]:
        """Score every trajectory; with `record`, also store each breakdown in `Trajectory.reward`."""
        trajs = list(trajectories)
        if not trajs:
            return []
        parts = groups_by_id(trajs) if groups is None else _check_partition(groups, len(trajs))
        ctx = ctx or self.context()
        ctx.prefetch_answers(trajs)
        values = {c.key: c.score_batch(trajs, parts, ctx) for c in self.components}
        out = []
        for i, t in enumerate(trajs):
            b = self.combine(t, {k: v[i] for k, v in values.items()})
            if record:
                t.reward = b.to_dict()
            out.append(b)
        return out

    def combine(self, traj: Trajectory, values: dict[str, ComponentValue]) -> RewardBreakdown:
        """Weigh and add the components' raw values (formulas in `rewards.breakdown`)."""
        n = len(traj.steps)
        steps = [0.0] * n
        episode = 0.0
        scores: dict[str, ComponentScore] = {}
        for c in self.components:
            v = values[c.key]
            reduce = c.reduce if c.scope == "step" else None
            if v.status == "failed":
                scores[c.key] = ComponentScore(c.name, c.weight, c.scope, None, v.steps, reduce, "failed", v.error,
                                               0.0, v.info)
                continue
            if c.scope == "step":
                raw = [float(x) for x in v.steps or []]  # type: ignore[arg-type]
                scale = 1.0 / n if (reduce == "mean" and n) else 1.0
                contribution = 0.0
                for t, x in enumerate(raw):
                    share = c.weight * x * scale + 0.0
                    steps[t] += share
                    contribution += share
                if n:
                    reduced: float | None = sum(raw) / n if reduce == "mean" else sum(raw)
                else:
                    reduced = 0.0 if reduce == "sum" else None
                scores[c.key] = ComponentScore(c.name, c.weight, c.scope, reduced, raw, reduce,  # type: ignore[arg-type]
                                               "ok" if reduced is not None else "n/a", None, contribution, v.info)
            elif v.value is None:
                scores[c.key] = ComponentScore(c.name, c.weight, c.scope, None, None, None, "n/a", None, 0.0, v.info)
            else:
                contribution = c.weight * v.value + 0.0
                episode += contribution
                scores[c.key] = ComponentScore(c.name, c.weight, c.scope, v.value, None, None, "ok", None,
                                               contribution, v.info)
        total = episode + sum(steps)
        return RewardBreakdown(total=total, episode=episode, steps=steps, components=scores, reward_set=self.name)

    def describe(self) -> list[dict[str, Any]]:
        """One row per component: key, name, scope, weight, params (for printing and logging the config)."""
        return [{"key": c.key, "name": c.name, "scope": c.scope, "weight": c.weight,
                 "params": c.params.model_dump(mode="json")} for c in self.components]
