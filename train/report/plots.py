"""Per-step plots (matplotlib PNG) of an SFT or RL run's `metrics.jsonl`, written to `RUN/plots/`.

    from train.report.plots import plot_metrics
    paths = plot_metrics("runs/rl/x")        # [RUN/plots/loss.png, RUN/plots/reward.png, ...]

One figure per panel below, drawn from whichever of its keys the run logged (a panel with none is skipped; a
value that is not a finite number is skipped, never plotted as 0). The reward panel also draws every
`reward/<component>/mean` the run logged, whatever the reward set.

| panel             | keys                                                                                   |
| ----------------- | -------------------------------------------------------------------------------------- |
| loss              | loss, eval/loss                                                                        |
| learning_rate     | lr                                                                                     |
| grad_norm         | grad_norm                                                                              |
| reward            | reward/total/mean, then every other reward/*/mean                                      |
| tool_calls        | tools/calls_per_episode, tools/calls_mean                                              |
| tool_rates        | tools/any_call_rate, tools/code_error_rate, tools/failed_call_rate                     |
| faithfulness      | faithfulness/faithful_rate, faithfulness/any_faithful_rate,                            |
|                   | faithfulness/p_correct_given_faithful, faithfulness/p_faithful_given_correct           |
| response_length   | response/length_mean                                                                   |
| policy            | kl, entropy, clip_frac                                                                 |
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from train.report.run_dir import read_metrics

PANELS: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "eval/loss"),
    "learning_rate": ("lr",),
    "grad_norm": ("grad_norm",),
    "reward": ("reward/total/mean",),
    "tool_calls": ("tools/calls_per_episode", "tools/calls_mean"),
    "tool_rates": ("tools/any_call_rate", "tools/code_error_rate", "tools/failed_call_rate"),
    "faithfulness": ("faithfulness/faithful_rate", "faithfulness/any_faithful_rate",
                     "faithfulness/p_correct_given_faithful", "faithfulness/p_faithful_given_correct"),
    "response_length": ("response/length_mean",),
    "policy": ("kl", "entropy", "clip_frac"),
}
REWARD_MEAN = re.compile(r"^reward/.+/mean$")
PLOTS_DIR = "plots"


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of `key` over the rows that logged a finite number for it, in step order."""
    pts = sorted((float(s), v) for r in rows if (s := _number(r.get("step"))) is not None
                 and (v := _number(r.get(key))) is not None)
    return [p[0] for p in pts], [p[1] for p in pts]


def panel_keys(rows: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """For each panel, the keys of it that the rows logged (panels without any left out)."""
    present: list[str] = []
    for r in rows:
        present += [k for k in r if k not in present]
    out: dict[str, list[str]] = {}
    for name, keys in PANELS.items():
        ks = [k for k in keys if k in present]
        if name == "reward":
            ks += [k for k in present if REWARD_MEAN.match(k) and k not in ks]
        ks = [k for k in ks if series(rows, k)[0]]
        if ks:
            out[name] = ks
    return out


def plot_metrics(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write one PNG per panel (see the module docstring) for `run_dir/metrics.jsonl`; returns their paths (empty
    when the run has no metrics file or logged none of the panels' keys)."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return []
    rows = read_metrics(metrics)
    panels = panel_keys(rows)
    if not panels:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir) if out_dir is not None else run_dir / PLOTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, keys in panels.items():
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
        for key in keys:
            xs, ys = series(rows, key)
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.5, label=key)
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
