"""Plots from metrics.jsonl: SFT and RL keys, every reward component, missing and non-numeric values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from train.report import RunDirError, read_metrics
from train.report.plots import panel_keys, plot_metrics, series


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_sft_run_plots_loss_lr_and_grad_norm_only(tmp_path: Path) -> None:
    _write(tmp_path / "metrics.jsonl", [{"step": s, "loss": 2.0 / s, "lr": 1e-5, "grad_norm": 1.0, "epoch": s / 10}
                                        for s in range(1, 11)] + [{"step": 10, "eval/loss": 0.4}])
    paths = plot_metrics(tmp_path)
    assert [p.name for p in paths] == ["loss.png", "learning_rate.png", "grad_norm.png"]
    assert series(read_metrics(tmp_path / "metrics.jsonl"), "eval/loss") == ([10.0], [0.4])
    im = np.asarray(Image.open(paths[0]).convert("RGB"))
    assert im.shape == (360, 640, 3) and (im < 200).any(axis=2).mean() > 0.01  # axes, text and lines drawn


def test_rl_run_plots_every_reward_component_and_skips_missing_or_bad_values(tmp_path: Path) -> None:
    rows = [{"step": 1, "reward/total/mean": 0.1, "reward/answer_accuracy/mean": 0.0, "loss": 0.3, "kl": 0.0,
             "tools/any_call_rate": 0.9, "tools/calls_per_episode": 2.0, "faithfulness/faithful_rate": 0.5},
            {"step": 2, "reward/total/mean": 0.4, "reward/answer_accuracy/mean": None, "reward/my_bonus/mean": 1.0,
             "loss": "nan?", "entropy": float("inf"), "response/length_mean": 120, "clip_frac": 0.1},
            {"step": 3, "reward/total/mean": 0.6, "tools/code_error_rate": 0.2, "custom": "text", "flag": True}]
    _write(tmp_path / "metrics.jsonl", rows)
    keys = panel_keys(rows)
    assert keys["reward"] == ["reward/total/mean", "reward/answer_accuracy/mean", "reward/my_bonus/mean"]
    assert keys["policy"] == ["kl", "clip_frac"]  # entropy was never finite
    assert keys["loss"] == ["loss"] and series(rows, "loss") == ([1.0], [0.3])  # the string is skipped, not 0
    assert keys["tool_rates"] == ["tools/any_call_rate", "tools/code_error_rate"]
    names = [p.name for p in plot_metrics(tmp_path)]
    assert names == ["loss.png", "reward.png", "tool_calls.png", "tool_rates.png", "faithfulness.png",
                     "response_length.png", "policy.png"]
    assert all((tmp_path / "plots" / n).stat().st_size > 1000 for n in names)


def test_no_metrics_no_plots_and_a_bad_line_names_the_file(tmp_path: Path) -> None:
    assert plot_metrics(tmp_path) == []
    _write(tmp_path / "metrics.jsonl", [{"step": 1, "custom": 3}])
    assert plot_metrics(tmp_path) == []
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1}\n{"loss": 2}\n')
    with pytest.raises(RunDirError, match=r"metrics.jsonl:2: a metrics row must be a JSON object with a \"step\""):
        plot_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1}\n{"step": 2, "lo')  # torn last line: skipped
    assert [p.name for p in plot_metrics(tmp_path)] == ["loss.png"]
