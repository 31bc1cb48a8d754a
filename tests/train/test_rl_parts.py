"""Small parts of the RL stage: the task sampler's resumable position, the collapse alarm, mini-batch splits,
the exclusion rule, and the RL config's refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollout.task import Task
from rollout.trajectory import FinishReason, Trajectory
from train.config import ConfigError, load_config
from train.config.rl import RLConfig
from train.rl_batch import exclusion, split_minibatches
from train.rl_metrics import CollapseMonitor
from train.task_sampler import TaskSampler

ROOT = Path(__file__).resolve().parents[2]


def _tasks(n: int) -> list[Task]:
    return [Task(id=f"t{i}", images=["x.png"], question="q", answer="a", answer_type="text") for i in range(n)]


def test_task_sampler_resumes_where_it_stopped_and_reshuffles_each_epoch() -> None:
    a = TaskSampler(_tasks(5), seed=1)
    first = [t.id for t in a.take(3)]
    state = a.state_dict()
    rest = [t.id for t in a.take(4)]  # crosses into epoch 1
    b = TaskSampler(_tasks(5), seed=1)
    b.load_state_dict(state)
    assert [t.id for t in b.take(4)] == rest
    assert sorted(first + rest[:2]) == [f"t{i}" for i in range(5)]  # epoch 0 visits every task once
    assert a.epoch == 1
    with pytest.raises(ValueError, match="same data.train_files"):
        TaskSampler(_tasks(4)).load_state_dict(state)


def test_collapse_monitor_by_hand() -> None:
    m = CollapseMonitor(baseline_steps=2, fraction=0.25)
    assert m.update(0.8) is None and m.update(0.6) is None  # baseline (0.8 + 0.6) / 2 = 0.7
    assert m.update(0.2) is None  # 0.2 >= 0.25 * 0.7 = 0.175
    msg = m.update(0.1)  # 0.1 < 0.175
    assert msg and "10.0% of episodes" in msg and "70.0%" in msg
    again = CollapseMonitor(baseline_steps=2, fraction=0.25)
    again.load_state_dict(m.state_dict())
    assert again.baseline == pytest.approx(0.7)


def test_minibatch_split_covers_every_sample_once() -> None:
    parts = split_minibatches(7, 3, seed=0)
    assert sorted(i for p in parts for i in p) == list(range(7)) and sorted(map(len, parts)) == [2, 2, 3]


class _Breakdown:
    def __init__(self, failed: list[str]) -> None:
        self._failed = failed

    def failed(self) -> list[str]:
        return self._failed


def _traj(reason: FinishReason) -> Trajectory:
    return Trajectory(id="x", task=_tasks(1)[0], protocol="codevl", finish_reason=reason)


def test_exclusion_rule() -> None:
    ok = _Breakdown([])
    assert exclusion(_traj(FinishReason.ANSWERED), ok, mask_truncated=True) is None
    assert exclusion(_traj(FinishReason.ENGINE_ERROR), ok, mask_truncated=False) == "engine_error"
    assert exclusion(_traj(FinishReason.SANDBOX_ERROR), ok, mask_truncated=False) == "sandbox_error"
    assert exclusion(_traj(FinishReason.ANSWERED), _Breakdown(["judge"]), mask_truncated=False) == "reward_failed:judge"
    assert exclusion(_traj(FinishReason.TURN_LIMIT), ok, mask_truncated=False) is None
    assert exclusion(_traj(FinishReason.TURN_LIMIT), ok, mask_truncated=True) == "truncated"


def _load(*overrides: str) -> Any:
    return load_config(RLConfig, ROOT / "configs/rl/tiny_cpu.yaml", list(overrides))


def test_rl_config_refusals() -> None:
    with pytest.raises(ConfigError, match="rollout.temperature"):
        _load("rollout.temperature=2.5")
    with pytest.raises(ConfigError, match="after top-k/top-p truncation"):
        _load("rollout.engine=vllm_colocate", "rollout.top_p=0.9")
    _load("rollout.engine=hf", "rollout.top_p=0.9")  # the HF engine's logprobs are before truncation
    with pytest.raises(ConfigError, match="clip_high"):
        _load("algo.clip_high=0.1")
    with pytest.raises(ConfigError, match="cannot fill"):
        _load("train.prompts_per_step=1", "rollout.num_generations=2", "train.updates_per_step=3")
    with pytest.raises(ConfigError, match="algo.advantge"):
        _load("algo.advantge=dense")
