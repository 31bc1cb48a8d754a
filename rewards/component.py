"""The reward component contract (docs/architecture.md, rewards; docs/methods.md for the formulas).

A component is a small class with

- `name` (its registry name), `scope` (`step`, `episode` or `group`), typed `Params` (pydantic, unknown keys
  rejected), a `source` (where the formula comes from) and a one-line `formula`;
- per instance: validated `params`, a `weight` (0 = computed and logged, not trained on) and an optional `label`
  (to use one component twice in a set with different parameters).

Scopes and what they return for one trajectory:

- `step`: `score(traj, ctx)` -> one raw value per code step (`len(traj.steps)` of them). How the steps enter the
  trajectory's total is `reduce`: `sum` (each step's value counts once) or `mean` (divided by the number of
  steps, as TAPO's r_tool). The step values are kept per step, never collapsed: step t's reward lands on step
  t's tokens;
- `episode`: `score(traj, ctx)` -> one raw value, or None when the component does not apply (e.g. faithfulness
  of a task without evidence boxes): recorded as `n/a`, contributes nothing, left out of means;
- `group`: `score_group(trajs, ctx)` -> one episode value per rollout, computed from the whole group of rollouts
  of the same task (CodeVision's tool-necessity bonus, Pixel-Reasoner's curiosity bonus).

Sign convention: penalties return a non-negative magnitude (a count or a 0/1 indicator) and carry a negative
weight in the reward set, so `reward/<name>/mean` reads as a rate or a count.

A component signals a failed judge call by raising `JudgeFailed` (or returning `ComponentValue(status="failed")`);
the reward set records it as failed and leaves it out of the total. Any other exception is a bug and propagates
as `ComponentError` naming the component and the trajectory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rewards.context import ScoringContext
from rewards.errors import ComponentError, JudgeFailed
from rewards.params import ComponentParams
from rollout.trajectory import Trajectory

Scope = Literal["step", "episode", "group"]
Reduce = Literal["sum", "mean"]
Status = Literal["ok", "failed"]


@dataclass
class ComponentValue:
    """A component's raw output for one trajectory: `value` (episode/group scope; None = not applicable) or
    `steps` (step scope; one per code step; None only for steps whose judge call failed), `status`, the
    failure text, and JSON-able `info` (per-step reasons, judge replies) kept in the breakdown."""

    value: float | None = None
    steps: list[float | None] | None = None
    status: Status = "ok"
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def failed(cls, error: str, *, steps: list[float | None] | None = None, info: dict[str, Any] | None = None) -> ComponentValue:
        return cls(steps=steps, status="failed", error=error, info=info or {})


def _finite(x: Any, what: str) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"{what} is {v}, not a finite number")
    return v


class RewardComponent:
    """Base class; see the module docstring. Subclasses set the class attributes and implement `score` (step
    and episode scopes) or `score_group` (group scope)."""

    name: ClassVar[str] = ""
    scope: ClassVar[Scope] = "episode"
    Params: ClassVar[type[ComponentParams]] = ComponentParams
    source: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    default_reduce: ClassVar[Reduce] = "sum"

    def __init__(self, params: ComponentParams | Mapping[str, Any] | None = None, *, weight: float = 1.0,
                 label: str | None = None) -> None:
        if isinstance(params, self.Params):
            self.params = params
        else:
            self.params = self.Params.model_validate(dict(params or {}))
        self.weight = _finite(weight, f"weight of {self.name!r}")
        self.label = label

    @property
    def key(self) -> str:
        """The name this instance is recorded and logged under (its label, else its registry name)."""
        return self.label or self.name

    @property
    def reduce(self) -> Reduce:
        """How step values enter the total (step scope): a `reduce` parameter if the component has one."""
        return getattr(self.params, "reduce", self.default_reduce)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, weight={self.weight}, params={self.params!r})"

    # ---- to implement ------------------------------------------------------------------------------------

    def score(self, traj: Trajectory, ctx: ScoringContext) -> Any:
        """Step scope: a list of per-step values; episode scope: a value or None. May return ComponentValue."""
        raise NotImplementedError(f"{type(self).__name__} must implement score()")

    def score_group(self, trajs: Sequence[Trajectory], ctx: ScoringContext) -> Sequence[Any]:
        """Group scope: one episode value (or None, or ComponentValue) per rollout of the group."""
        raise NotImplementedError(f"{type(self).__name__} must implement score_group()")

    # ---- the batch driver (judge-backed components override it to run their calls concurrently) ----------

    def normalise(self, out: Any, traj: Trajectory) -> ComponentValue:
        """Check and convert what `score`/`score_group` returned (a wrong shape or NaN is a bug: ValueError)."""
        n = len(traj.steps)
        if isinstance(out, ComponentValue):
            value = out
        elif self.scope == "step":
            if out is None or isinstance(out, (int, float)):
                raise ValueError(f"a step component returns one value per code step, got {out!r}")
            value = ComponentValue(steps=list(out))
        else:
            if out is not None and not isinstance(out, (int, float)):
                raise ValueError(f"an {self.scope} component returns a number or None, got {type(out).__name__}")
            value = ComponentValue(value=out)
        if self.scope == "step":
            if value.steps is None or len(value.steps) != n:
                got = None if value.steps is None else len(value.steps)
                raise ValueError(f"step component returned {got} step values for {n} code steps")
            value.steps = [None if v is None else _finite(v, f"step {i} value") for i, v in enumerate(value.steps)]
            if value.status == "ok" and any(v is None for v in value.steps):
                raise ValueError("step values may be None only when the status is failed")
        elif value.value is not None:
            value.value = _finite(value.value, "value")
        return value

    def score_batch(self, trajs: Sequence[Trajectory], groups: Sequence[Sequence[int]],
                    ctx: ScoringContext) -> list[ComponentValue]:
        """Values for every trajectory (`groups` partitions the indices; used by group scope)."""
        out: list[ComponentValue | None] = [None] * len(trajs)
        if self.scope == "group":
            for g in groups:
                members = [trajs[i] for i in g]
                if not members:
                    continue
                try:
                    try:
                        vals = list(self.score_group(members, ctx))
                    except JudgeFailed as exc:
                        vals = [ComponentValue.failed(str(exc)) for _ in members]
                    if len(vals) != len(members):
                        raise ValueError(f"score_group returned {len(vals)} values for a group of {len(members)}")
                    for i, v in zip(g, vals, strict=True):
                        out[i] = self.normalise(v, trajs[i])
                except Exception as exc:
                    raise ComponentError(self.key, [t.id for t in members], exc) from exc
        else:
            for i, t in enumerate(trajs):
                out[i] = self.score_one(t, ctx)
        missing = [trajs[i].id for i, v in enumerate(out) if v is None]
        if missing:
            raise ComponentError(self.key, missing, ValueError("trajectory belongs to no group"))
        return out  # type: ignore[return-value]

    def score_one(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
        """`score` for one trajectory with JudgeFailed recorded and other errors wrapped in ComponentError."""
        try:
            try:
                raw = self.score(traj, ctx)
            except JudgeFailed as exc:
                n = len(traj.steps)
                raw = ComponentValue.failed(str(exc), steps=[None] * n if self.scope == "step" else None)
            return self.normalise(raw, traj)
        except Exception as exc:
            raise ComponentError(self.key, [traj.id], exc) from exc
