"""The reward component contract (each component cites the paper or released code it reproduces).

A component is a small class with

- `name` (its registry name), `scope` (`step`, `episode` or `group`), typed `Params` (pydantic, unknown keys
  rejected), a `source` (where the formula comes from) and a one-line `formula`;
- per instance: validated `params`, a `weight` (0 = computed and logged, not trained on) and an optional `label`
  (to use one component twice in a set with different parameters).

Scopes and what they return for one trajectory:

- `step`: `score(traj, ctx)` -> one raw value per code step (`len(traj.steps)` of them), None for a step with
  nothing to judge (n/a: e.g. a block that was never executed). Each step component declares how its per-step
  values enter the episode total used by outcome advantages, `reduce` (class attribute `default_reduce`, or a
  `reduce` parameter): `sum` (each step's value counts once, as CodeVision's strategy reward sum_t R_strategy)
  or `mean` (divided by the number of steps that have a value, as TAPO's r_tool). The step values are kept per
  step, never collapsed: step t's share lands on step t's tokens for dense advantages;
- `episode`: `score(traj, ctx)` -> one raw value, or None when the component does not apply (e.g. faithfulness
  of a task without evidence boxes): recorded as `n/a`, contributes nothing, left out of means, counted;
- `group`: `score_group(trajs, ctx)` -> one episode value per rollout, computed from the whole group of rollouts
  of the same task (CodeVision's tool-necessity bonus, Pixel-Reasoner's curiosity bonus). A trajectory without
  a `group_id` scored alone has no group: the component is n/a for it, never 0.

n/a is never 0 (a component with nothing to judge says so): return None (episode/group), all-None steps, or
`ComponentValue.not_applicable(reason)` with a short reason that names what the task lacks ("no evidence box");
the reward set counts n/a per component and warns once per run which tasks lack what.

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
    na: str | None = None  # why the component does not apply (when value / all steps are None)

    @classmethod
    def not_applicable(cls, reason: str, *, info: dict[str, Any] | None = None) -> ComponentValue:
        """The component does not apply to this trajectory (episode, group or step scope): n/a, never 0."""
        return cls(value=None, steps=None, na=reason, info=info or {})

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
                 label: str | None = None, reduce: Reduce | None = None) -> None:
        if isinstance(params, self.Params):
            self.params = params
        else:
            self.params = self.Params.model_validate(dict(params or {}))
        self.weight = _finite(weight, f"weight of {self.name!r}")
        self.label = label
        if reduce is not None:
            if self.scope != "step":
                raise ValueError(f"only step components aggregate steps; {self.name!r} has scope {self.scope!r}")
            if reduce not in ("sum", "mean"):
                raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
            own = getattr(self.params, "reduce", None)
            if own is not None and own != reduce and "reduce" in self.params.model_fields_set:
                raise ValueError(f"reduce {reduce!r} contradicts params.reduce {own!r}; set one of them")
        self._reduce = reduce

    @property
    def key(self) -> str:
        """The name this instance is recorded and logged under (its label, else its registry name)."""
        return self.label or self.name

    @property
    def reduce(self) -> Reduce:
        """How step values enter the episode total (step scope): the reward set's `reduce:` for this entry, else
        a `reduce` parameter if the component has one, else the component's `default_reduce`."""
        if self._reduce is not None:
            return self._reduce
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
            if value.steps is None and value.na is not None:
                value.steps = [None] * n
            if value.steps is None or len(value.steps) != n:
                got = None if value.steps is None else len(value.steps)
                raise ValueError(f"step component returned {got} step values for {n} code steps")
            value.steps = [None if v is None else _finite(v, f"step {i} value") for i, v in enumerate(value.steps)]
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
                if len(members) == 1 and members[0].group_id is None:
                    out[g[0]] = ComponentValue.not_applicable("no group id (rollout scored without its group)")
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
