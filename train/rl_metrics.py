"""What the RL stage logs about its episodes, and the tool-use collapse alarm.

Tool-use collapse (tool calls falling to zero within tens of steps) is the most reported failure of code-as-tool
RL, so every step logs the signals that show it first: tool calls per episode and the share of episodes with any
call (`tools/*`, from `rewards.metrics`), the share of code blocks that failed, and per-op usage from the sandbox's
operation trace (`ops/<op>`: the share of episodes whose executed code really applied that op to an input image),
plus finish reasons (`finish/<reason>`) and response lengths (`response/*`, sampled tokens).

`CollapseMonitor` compares the tool-call rate with its mean over the first `baseline_steps` and raises the alarm
below `collapse_fraction` of it; its state is checkpointed so a resumed run keeps its baseline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rollout.trajectory import Trajectory


def episode_metrics(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """finish/<reason>, response/length_mean|max, ops/<op> shares over `trajectories`."""
    if not trajectories:
        return {}
    n = len(trajectories)
    m: dict[str, float] = {}
    for reason, count in Counter(t.finish_reason.value if t.finish_reason else "none" for t in trajectories).items():
        m[f"finish/{reason}"] = count / n
    lengths = [t.num_sampled_tokens for t in trajectories]
    m["response/length_mean"] = sum(lengths) / n
    m["response/length_max"] = float(max(lengths))
    m["response/turns_mean"] = sum(len(t.assistant_turns()) for t in trajectories) / n
    used: Counter[str] = Counter()
    for t in trajectories:
        used.update({op for s in t.steps if s.result is not None for op in s.result.ops_used()})
    for op, count in sorted(used.items()):
        m[f"ops/{op}"] = count / n
    return m


class CollapseMonitor:
    """Alarm when `tools/any_call_rate` falls below `fraction` x its mean over the first `baseline_steps` steps."""

    def __init__(self, *, baseline_steps: int, fraction: float) -> None:
        self.baseline_steps = baseline_steps
        self.fraction = fraction
        self.seen: list[float] = []

    @property
    def baseline(self) -> float | None:
        if len(self.seen) < self.baseline_steps:
            return None
        first = self.seen[: self.baseline_steps]
        return sum(first) / len(first)

    def update(self, rate: float) -> str | None:
        """Record this step's rate; a message when it collapsed, else None."""
        self.seen.append(float(rate))
        base = self.baseline
        if base is None or base <= 0 or rate >= self.fraction * base:
            return None
        return (f"tool-use collapse: {rate:.1%} of episodes called a tool this step, below {self.fraction:.0%} of "
                f"the {base:.1%} of the first {self.baseline_steps} steps")

    def state_dict(self) -> dict[str, Any]:
        return {"seen": list(self.seen[: max(self.baseline_steps, 0)])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seen = [float(x) for x in state.get("seen", [])]
