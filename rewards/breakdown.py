"""`RewardBreakdown`: what scoring one trajectory produced, as recorded in `Trajectory.reward` (plain JSON).

The contract the RL trainer relies on (train/ uses exactly these fields):

- `total` = the reward set's episode total, the scalar used by outcome advantages. For a reproduction set it
  equals the paper's (or released code's) R exactly: episode and group components weighted, plus each step
  component aggregated over the steps as it declares (`reduce`: `sum` like CodeVision's sum_t R_strategy,
  `mean` like TAPO's r_tool = mean over code steps):

      total    = episode + sum(steps)
      episode  = sum over episode/group components c that applied of   w_c * value_c
      steps[t] = sum over step components c with a value at t of      w_c * v_{c,t} * (1/m_c if c reduces by
                                                                        mean else 1)

  with m_c the number of steps where c has a value (steps where it is n/a, e.g. blocks never executed, are left
  out of the mean and get no share);
- `episode` = the weighted sum of episode- and group-scope components only;
- `steps[k]` = step k's share of the total, one per code step in `Trajectory.steps` order (the trainer puts it on
  the tokens where loss_mask == 1 and step_ids == k for dense advantages; it is never collapsed into `episode`);
- `failed()` lists the components that failed (a judge call); such an episode is masked from the loss by the
  trainer, so a failure is recorded as `failed` and contributes nothing here, never turned into 0;
- `na()` lists the components that did not apply (n/a, with `na_reason`); they contribute nothing and are
  counted (`reward/<key>/na_count` in `rewards.metrics`, the n/a column of `codevl rescore`), never scored 0.

`components` keeps, per component (by key), its weight, scope, raw values (`value`: the episode value, or for
step components the reduced value, sum or mean of its steps; `steps`: the raw per-step values, None where n/a),
`status` (`ok`, `n/a`, `failed`), the failure text or n/a reason, the weighted `contribution` to the total, and
`info` (details such as per-step reasons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ScoreStatus = Literal["ok", "n/a", "failed"]


@dataclass
class ComponentScore:
    """One component's share of a trajectory's reward."""

    name: str
    weight: float
    scope: str
    value: float | None
    steps: list[float | None] | None = None
    reduce: str | None = None
    status: ScoreStatus = "ok"
    error: str | None = None
    contribution: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    na_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, "scope": self.scope, "value": self.value,
                "steps": list(self.steps) if self.steps is not None else None, "reduce": self.reduce,
                "status": self.status, "error": self.error, "contribution": self.contribution, "info": self.info,
                "na_reason": self.na_reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ComponentScore:
        return cls(name=d["name"], weight=float(d["weight"]), scope=d["scope"], value=d.get("value"),
                   steps=list(d["steps"]) if d.get("steps") is not None else None, reduce=d.get("reduce"),
                   status=d.get("status", "ok"), error=d.get("error"), contribution=float(d.get("contribution", 0.0)),
                   info=dict(d.get("info") or {}), na_reason=d.get("na_reason"))


@dataclass
class RewardBreakdown:
    """A trajectory's scored reward (see the module docstring)."""

    total: float
    episode: float
    steps: list[float]
    components: dict[str, ComponentScore]
    reward_set: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "episode": self.episode, "steps": list(self.steps),
                "reward_set": self.reward_set, "components": {k: c.to_dict() for k, c in self.components.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RewardBreakdown:
        return cls(total=float(d["total"]), episode=float(d["episode"]), steps=[float(x) for x in d["steps"]],
                   components={k: ComponentScore.from_dict(c) for k, c in d["components"].items()},
                   reward_set=d.get("reward_set"))

    def value(self, key: str) -> float | None:
        """The raw value of component `key` (None when n/a or failed)."""
        c = self.components[key]
        return c.value if c.status == "ok" else None

    def failed(self) -> list[str]:
        """Keys of the components that failed (judge calls) on this trajectory (the trainer masks it)."""
        return [k for k, c in self.components.items() if c.status == "failed"]

    def na(self) -> dict[str, str]:
        """Components that did not apply on this trajectory: key -> reason (contribute nothing, counted)."""
        return {k: c.na_reason or "not applicable" for k, c in self.components.items() if c.status == "n/a"}
