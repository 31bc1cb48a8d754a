"""The CPU demo end to end on the tiny model: synthetic tasks, oracle trajectories in the real sandbox, SFT,
concurrent HF rollouts, rewards, and a run directory that `codevl rescore` reproduces exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rewards import load_reward_set
from rewards.rescore import rescore
from rollout.trajectory import load_trajectories
from train.config import ConfigError, load_config
from train.config.demo import DemoConfig
from train.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_pipeline_and_its_run_rescores_exactly(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cfg = load_config(DemoConfig, ROOT / "configs/demo/cpu.yaml",
                      [f"output_dir={out}", "data.tasks_per_generator=1", "data.generators=[orientation,visual_search]",
                       "sft.steps=60", "rollout.samples_per_task=2", "rollout.max_turns=3"])
    lines: list[str] = []
    summary = run_demo(cfg, say=lines.append)
    assert yaml.safe_load((out / "config.yaml").read_text())["sft"]["steps"] == 60
    assert json.loads((out / "summary.json").read_text()) == summary
    assert [line.split("]")[0] for line in lines if line.startswith("[")][:6] == [
        "[model", "[data", "[oracle", "[sft", "[rollout", "[rewards"]
    assert summary["tasks"] == 2 and summary["oracle"]["failed_checks"] == 0
    oracle = load_trajectories(out / "sft" / "oracle.jsonl")
    assert len(oracle) == summary["oracle"]["trajectories"] >= 2
    assert all(s.result is not None and s.result.ok for t in oracle for s in t.steps)  # really ran in the sandbox
    assert (out / "sft-model" / "config.json").is_file() and (out / "sft-model" / "tokenizer.json").is_file()
    losses = summary["sft_losses"]
    assert len(losses) == 60 and losses[-1] < 0.2 * losses[0]
    trajs = load_trajectories(out / "trajectories" / "rollouts.jsonl")
    assert len(trajs) == summary["rollout"]["episodes"] == 4
    groups = {t.group_id: sorted(u.sample_index for u in trajs if u.group_id == t.group_id) for t in trajs}
    assert groups == {t.task.id: [0, 1] for t in trajs}  # GRPO groups: 2 samples of each task
    assert all(t.tokenized and len(t.logprobs) == len(t.token_ids) and t.reward for t in trajs)
    assert sum(len(t.steps) for t in trajs) == summary["rollout"]["code_steps"]
    assert summary["rollout"]["sampled_tokens"] == sum(sum(t.loss_mask) for t in trajs)
    # the recorded rewards are what the reward set gives when re-scored from the saved files
    again = rescore(out, load_reward_set(cfg.rewards), tmp_path / "rescored")
    assert [b.total for b in again.breakdowns] == again.recorded_totals == [t.reward["total"] for t in trajs]
    assert summary["rewards"]["total_mean"] == pytest.approx(sum(again.recorded_totals) / 4, abs=1e-4)


def test_demo_config_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="visual_serach"):
        load_config(DemoConfig, None, ["data.generators=[visual_serach]"])
    with pytest.raises(ConfigError, match="sft.stpes"):
        load_config(DemoConfig, None, ["sft.stpes=3"])
