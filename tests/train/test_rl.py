"""The RL stage on the tiny model with the real HF engine and sandbox: a learning test, multi-turn steps with image
observations, the failure policy, on-policy sanity, exact resume, and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rewards.component import ComponentValue, RewardComponent
from rewards.registry import COMPONENTS, register
from rollout.engines.base import EngineError
from rollout.engines.hf import HFEngine
from rollout.scripted import ScriptedTokenEngine
from rollout.task import Task
from rollout.trajectory import load_trajectories
from train.config import load_config
from train.config.rl import RLConfig
from train.rl import RLRunError, RLTrainer, run_rl

ROOT = Path(__file__).resolve().parents[2]


class _EvenOpening(RewardComponent):
    """Test reward the tiny model can move: the share of the first 4 sampled tokens whose id is even."""

    name = "test_even_opening"
    scope = "episode"
    source = "tests"
    formula = "share of even token ids among the first 4 sampled"

    def score(self, traj: Any, ctx: Any) -> ComponentValue:
        ids = [i for i, m in zip(traj.token_ids, traj.loss_mask, strict=True) if m][:4]
        return ComponentValue(value=sum(i % 2 == 0 for i in ids) / 4 if ids else 0.0)


class _FlakyJudge(RewardComponent):
    """Test reward whose 'judge call' fails on every episode with sample index 0."""

    name = "test_flaky_judge"
    scope = "episode"
    source = "tests"
    formula = "1, or a failed judge call for sample 0"

    def score(self, traj: Any, ctx: Any) -> ComponentValue:
        if traj.sample_index == 0:
            return ComponentValue.failed("judge timed out")
        return ComponentValue(value=1.0)


@pytest.fixture(scope="module")
def test_rewards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    for cls in (_EvenOpening, _FlakyJudge):
        register(cls)
    root = tmp_path_factory.mktemp("rewards")
    files = {}
    for name, comps in {"even": "[{name: test_even_opening, weight: 1.0}]",
                        "judge": "[{name: test_even_opening, weight: 1.0}, {name: test_flaky_judge, weight: 0.5}]"}.items():
        files[name] = root / f"{name}.yaml"
        files[name].write_text(f"name: {name}\ncomponents: {comps}\n")
    try:
        yield files
    finally:
        for cls in (_EvenOpening, _FlakyJudge):
            COMPONENTS.pop(cls.name, None)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from data import write_tasks

    root = tmp_path_factory.mktemp("rl-tasks")
    rng = np.random.RandomState(0)
    tasks = []
    for i in range(4):
        path = root / f"t{i}.png"
        Image.fromarray(rng.randint(0, 255, (64, 96, 3), dtype=np.uint8)).save(path)
        tasks.append(Task(id=f"t{i}", images=[str(path)], question=f"What colour is square {i}?", answer="red",
                          answer_type="text", evidence=[{"box": [0, 0, 20, 20]}], required_ops=["crop"]))
    out = root / "tasks.jsonl"
    write_tasks(out, tasks)
    return out


def _cfg(model: Path, tasks: Path, rewards: Path, out: Path, *extra: str) -> RLConfig:
    return load_config(RLConfig, ROOT / "configs/rl/tiny_cpu.yaml", [
        f"model.name_or_path={model}", f"data.train_files=[{tasks}]", f"rewards={rewards}", f"run.output_dir={out}",
        "train.progress_bar=false", "rollout.num_generations=4", "train.prompts_per_step=2", *extra])


def test_a_reward_the_model_can_move_rises(tiny_models: dict[str, Path], task_file: Path,
                                           test_rewards: dict[str, Path], tmp_path: Path) -> None:
    cfg = _cfg(tiny_models["qwen2_5_vl"], task_file, test_rewards["even"], tmp_path / "run",
               "rollout.max_turns=1", "rollout.max_new_tokens_per_turn=4", "train.steps=30", "optim.lr=1e-2",
               "run.save_steps=1000", "train.save_rollouts_every=0", "algo.max_refill_rounds=0")
    res = run_rl(cfg, say=lambda s: None)
    rewards = [m["reward/total/mean"] for m in res.history]
    first, last = np.mean(rewards[:5]), np.mean(rewards[-5:])
    assert last > first + 0.2, rewards  # e.g. ~0.5 -> > 0.7
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_first_update_is_on_policy(tiny_models: dict[str, Path], task_file: Path, test_rewards: dict[str, Path],
                                   tmp_path: Path) -> None:
    """Engine logprobs (HF, fp32) and the trainer's agree, so importance ratios are 1 within 1e-5 and nothing clips."""
    cfg = _cfg(tiny_models["qwen2_5_vl"], task_file, test_rewards["even"], tmp_path / "run",
               "rollout.max_turns=1", "rollout.max_new_tokens_per_turn=16", "train.steps=1", "algo.max_refill_rounds=3")
    m = run_rl(cfg, say=lambda s: None).history[0]
    assert m["train/samples"] > 0
    assert abs(m["is/is_ratio_mean"] - 1) < 1e-5 and abs(m["is/is_ratio_max"] - 1) < 1e-5
    assert m["policy/ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    assert m["policy/clip_frac_low"] == 0 and m["policy/clip_frac_high"] == 0


def test_lora_run_trains_the_adapter_and_exports_it_merged(tiny_models: dict[str, Path], task_file: Path,
                                                           test_rewards: dict[str, Path], tmp_path: Path) -> None:
    """LoRA: the KL reference is the base model (adapter disabled), so the first step's KL is 0 (LoRA's B starts at
    0); the adapter is trained and saved, and `final/` is the base with it merged (its logits differ from the base's
    by exactly what the adapter adds)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText

    out = tmp_path / "run"
    cfg = _cfg(tiny_models["qwen2_5_vl"], task_file, test_rewards["even"], out, "rollout.max_turns=1",
               "rollout.max_new_tokens_per_turn=4", "train.steps=3", "optim.lr=1e-2", "algo.kl_coef=0.01",
               "model.lora.r=8", "model.lora.alpha=16", "model.lora.dropout=0.0", "algo.max_refill_rounds=3")
    res = run_rl(cfg, say=lambda s: None)
    assert res.history[0]["kl"] == pytest.approx(0.0, abs=1e-7)
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    b = [v for k, v in adapter.items() if "lora_B" in k]
    assert b and all(v.shape[1] == 8 for v in b) and any(v.abs().sum() > 0 for v in b)  # trained away from 0
    assert res.final_dir == out / "final"
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    base = AutoModelForImageTextToText.from_pretrained(tiny_models["qwen2_5_vl"]).eval()
    merged = AutoModelForImageTextToText.from_pretrained(out / "final").eval()
    with torch.no_grad():
        assert not torch.allclose(base(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-6)


class _TwoScripts(ScriptedTokenEngine):
    """Replays one of two scripts, chosen by the request's seed (so the samples of a group differ): a crop of the
    evidence shown back as an image, then the right answer; or a crop elsewhere, an error, and a wrong answer.
    A scripted policy for the bookkeeping of a multi-turn step; the update still runs on the real model."""

    def __init__(self, processor: Any, protocol: Any) -> None:
        img = protocol.image_names(1)[0]
        self.scripts = [
            [protocol.format_assistant("Zoom in.", code=f"c = {img}.crop((0, 0, 24, 24))\nshow(c)"),
             protocol.format_assistant("It is red.", answer="red")],
            [protocol.format_assistant("Look right.", code=f"c = {img}.crop((60, 30, 90, 60))\nshow(c)"),
             protocol.format_assistant("Again.", code="print(undefined)"),
             protocol.format_assistant("Blue.", answer="blue")],
        ]
        super().__init__(processor, self.scripts[0])

    async def generate(self, prompt_ids: list[int], images: list[Any], sampling: Any) -> Any:
        first_turn = self._turn_index(prompt_ids) == 0
        if first_turn:
            self.choice = sampling.seed % 2
        self.script = self.scripts[getattr(self, "choice", 0)]
        return await super().generate(prompt_ids, images, sampling)


def test_dense_multi_turn_step_with_image_observations(tiny_models: dict[str, Path], task_file: Path,
                                                       tmp_path: Path) -> None:
    """Multi-turn episodes (code run in the sandbox, crops shown back as images) through collect, dense advantages
    on each step's own tokens, and an update of the real model."""
    from rollout.protocols import get_protocol

    cfg = _cfg(tiny_models["qwen2_5_vl"], task_file, ROOT / "configs/rewards/tapo.yaml", tmp_path / "rl",
               "rollout.max_turns=4", "rollout.max_new_tokens_per_turn=64", "train.steps=1", "algo.advantage=dense",
               "algo.filter_all_equal_groups=false", "rollout.max_concurrent_episodes=1")
    trainer = RLTrainer(cfg, say=lambda s: None)
    trainer.engine = _TwoScripts(trainer.processor, get_protocol("codevl"))
    batch = trainer.collect(1)
    trajs = batch.trajectories
    assert len(trajs) == 8 and all(x is None for x in batch.excluded)
    assert all(any(im.origin == "step" for im in t.images) for t in trajs)  # the crops came back as images
    assert {len(t.steps) for t in trajs} == {1, 2}  # both scripts were played
    ep_adv, step_adv = trainer.advantages(batch)
    for t, s in zip(trajs, step_adv, strict=True):
        assert s is not None and len(s) == len(t.steps)
    assert any(abs(x) > 0 for s in step_adv for x in s)  # the step rewards differ, so do the step advantages
    m = trainer.update(batch, ep_adv, step_adv)
    assert m["train/samples"] == 8 and np.isfinite(m["loss"]) and m["grad_norm"] > 0
    trainer.pool.close()


class _FailingEngine(HFEngine):
    """The real HF engine, except that requests of sample 0 and 1 of every group fail like an unreachable backend."""

    async def generate(self, prompt_ids: list[int], images: list[Any], sampling: Any) -> Any:
        if self.fail(prompt_ids):
            raise EngineError("backend unavailable")
        return await super().generate(prompt_ids, images, sampling)

    def fail(self, prompt_ids: list[int]) -> bool:
        self.calls = getattr(self, "calls", 0) + 1
        return self.calls % 4 in (1, 2)


def test_failed_episodes_are_masked_counted_and_kept(tiny_models: dict[str, Path], task_file: Path,
                                                     test_rewards: dict[str, Path], tmp_path: Path) -> None:
    cfg = _cfg(tiny_models["qwen2_5_vl"], task_file, test_rewards["judge"], tmp_path / "run", "rollout.max_turns=1",
               "rollout.max_new_tokens_per_turn=8", "train.steps=1", "algo.filter_all_equal_groups=false")
    trainer = RLTrainer(cfg, say=lambda s: None)
    m = trainer.run().history[0]
    # the flaky judge fails on sample 0 of each group: a quarter of the episodes, masked, never scored as 0
    assert m["excluded/reward_failed"] == pytest.approx(0.25) and m["train/samples"] == 6
    trajs = load_trajectories(tmp_path / "run" / "rollouts" / "step_000001.jsonl")
    assert sorted(t.metadata["excluded"] or "" for t in trajs).count("reward_failed:test_flaky_judge") == 2

    # an engine failing half of the requests: above max_failed_fraction=0.4 the run stops and says what failed
    cfg2 = _cfg(tiny_models["qwen2_5_vl"], task_file, test_rewards["even"], tmp_path / "run2", "rollout.max_turns=1",
                "rollout.max_new_tokens_per_turn=8", "train.steps=1", "algo.max_failed_fraction=0.4",
                "algo.filter_all_equal_groups=false")
    trainer2 = RLTrainer(cfg2, say=lambda s: None)
    trainer2.engine = _FailingEngine(trainer2.acc.unwrap_model(trainer2.model), trainer2.processor)
    with pytest.raises(RLRunError, match=r"50% of episodes failed \(\{'engine_error': 4\}\)"):
        trainer2.run()
    saved = load_trajectories(tmp_path / "run2" / "rollouts" / "step_000001.jsonl")
    assert sum(t.finish_reason.value == "engine_error" and "backend unavailable" in t.error for t in saved) == 4


def test_killed_run_resumes_exactly(tiny_models: dict[str, Path], task_file: Path, test_rewards: dict[str, Path],
                                    tmp_path: Path) -> None:
    # one request per generation batch: batch composition (which depends on timing) cannot change the numerics
    extra = ("rollout.max_turns=1", "rollout.max_new_tokens_per_turn=6", "train.steps=4", "run.save_steps=2",
             "rollout.hf_max_batch_size=1",
             "optim.lr=1e-3", "algo.max_refill_rounds=1", "train.updates_per_step=2", "algo.ppo_epochs=2")
    whole = run_rl(_cfg(tiny_models["qwen2_5_vl"], task_file, test_rewards["even"], tmp_path / "a", *extra),
                   say=lambda s: None)
    run_rl(_cfg(tiny_models["qwen2_5_vl"], task_file, test_rewards["even"], tmp_path / "b", *extra), stop_after=2,
           say=lambda s: None)
    resumed = run_rl(_cfg(tiny_models["qwen2_5_vl"], task_file, test_rewards["even"], tmp_path / "b", *extra),
                     say=lambda s: None)
    assert resumed.steps == 4 and len(resumed.history) == 2
    keys = ("reward/total/mean", "loss", "grad_norm", "response/length_mean")
    assert [{k: m[k] for k in keys} for m in resumed.history] == [{k: m[k] for k in keys} for m in whole.history[2:]]
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_bad_input_gives_a_message(tiny_models: dict[str, Path], task_file: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from train.cli import main

    cfg = str(ROOT / "configs/rl/tiny_cpu.yaml")
    base = [f"model.name_or_path={tiny_models['qwen2_5_vl']}", f"run.output_dir={tmp_path / 'run'}"]
    assert main(["rl", "--config", cfg, *base, f"data.train_files=[{tmp_path / 'nope.jsonl'}]"]) == 1
    assert "nope.jsonl" in capsys.readouterr().err
    assert main(["rl", "--config", cfg, *base, f"data.train_files=[{task_file}]", "rewards=nope.yaml"]) == 2
    assert "reward set file not found: nope.yaml" in capsys.readouterr().err
    assert main(["rl", "--config", cfg, *base, f"data.train_files=[{task_file}]", "rollout.temperature=3"]) == 2
    assert "rollout.temperature" in capsys.readouterr().err
    assert main(["rl", "--config", cfg, *base, f"data.train_files=[{task_file}]", "train.prompts_per_step=4",
                 "--dry-run"]) == 0
    assert "4 tasks; reward set 'codevision'" in capsys.readouterr().out
