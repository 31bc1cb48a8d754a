"""The RL stage under `accelerate launch`: 2 CPU processes (gloo, and DeepSpeed ZeRO-3 on its CPU accelerator),
ZeRO-2/3 on one process (slow), and bf16 ZeRO on one GPU (gpu). Each process rolls out its share of the step's
tasks, advantages are computed over the whole step, gradients are averaged, and one model is saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rollout.task import Task
from rollout.trajectory import load_trajectories

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))
SHORT_RUN = ("train.prompts_per_step=2", "rollout.num_generations=2", "algo.filter_all_equal_groups=false",
             "train.progress_bar=false", "rewards=configs/rewards/deepeyes.yaml")


def _random_tasks(root: Path, n: int, **fields: object) -> Path:
    from data import write_tasks

    rng = np.random.RandomState(0)
    tasks = []
    for i in range(n):
        path = root / f"t{i}.png"
        Image.fromarray(rng.randint(0, 255, (64, 96, 3), dtype=np.uint8)).save(path)
        tasks.append(Task(id=f"t{i}", images=[str(path)], question=f"What is in square {i}?", answer="red",
                          answer_type="text", **fields))  # type: ignore[arg-type]
    write_tasks(root / "tasks.jsonl", tasks)
    return root / "tasks.jsonl"


def _deepspeed_launch(root: Path, stage: int, *, processes: int, use_cpu: bool, port: int,
                      ds_config: Path | None = None) -> Path:
    """An accelerate launch config for DeepSpeed ZeRO-`stage` (configs/deepspeed/zero<stage>.json by default)."""
    path = root / f"zero{stage}_{processes}proc.yaml"
    ds_config = ds_config or ROOT / f"configs/deepspeed/zero{stage}.json"
    path.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\ndeepspeed_config:\n"
        f"  deepspeed_config_file: {ds_config}\n  zero3_init_flag: false\n"
        f"num_machines: 1\nnum_processes: {processes}\nmachine_rank: 0\nmain_process_ip: 127.0.0.1\n"
        f"main_process_port: {port}\nmain_training_function: main\nuse_cpu: {str(use_cpu).lower()}\n")
    return path


def _launch_rl(launch: Path, model: Path, tasks: Path, out: Path, *overrides: str, timeout: int = 900) -> list[dict]:
    """`accelerate launch -m train.rl` on the tiny CPU config; returns the rows of metrics.jsonl."""
    cmd = [ACCELERATE, "launch", "--config_file", str(launch), "-m", "train.rl",
           "--config", str(ROOT / "configs/rl/tiny_cpu.yaml"), f"model.name_or_path={model}",
           f"data.train_files=[{tasks}]", f"run.output_dir={out}", *SHORT_RUN, *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_cpu_processes_run_rl_steps_and_save_one_model(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    tasks = _random_tasks(tmp_path, 4, evidence=[{"box": [0, 0, 20, 20]}], required_ops=["crop"])
    out = tmp_path / "run"
    rows = _launch_rl(ROOT / "configs/accelerate/cpu_2proc.yaml", tiny_models["qwen2_5_vl"], tasks, out,
                      "train.steps=2", "rollout.max_turns=1", "rollout.max_new_tokens_per_turn=8")
    assert [r["step"] for r in rows] == [1, 2]  # one log, written by the main process
    assert all(r["train/samples"] == 2 for r in rows)  # each process trained on its own task's 2 episodes
    # both processes saved their rollouts: rank 0's file and rank 1's
    assert len(load_trajectories(out / "rollouts" / "step_000001.jsonl")) == 2
    assert len(load_trajectories(out / "rollouts" / "step_000001.r1.jsonl")) == 2
    assert (out / "final" / "model.safetensors").is_file() and (out / "checkpoint-2" / "rl_state.json").is_file()


@pytest.mark.parametrize("launch", ["ddp", "zero3"])
def test_processes_with_different_micro_batch_counts_stay_in_step(launch: str, tiny_models: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    """One process gets a long prompt (two micro-batches under the token budget), the other a short one (one):
    every forward/backward is a collective under DDP (buffer broadcast, gradient all-reduce) and ZeRO-3 (parameter
    gathers, gradient reduce-scatter), so the short one runs a no-loss filler micro-batch; without it the processes
    pair different collectives and fail (DDP) or hang (ZeRO-3; the timeout below makes that a failure). The ZeRO-3
    run also generates from the gathered weights and takes its KL against a DeepSpeed-sharded reference.
    Sizes: the prompt is ~410 tokens, the long question adds ~1,590; 2 episodes x ~2,010 > 2,100 >= 2 x ~420."""
    from data import write_tasks

    path = tmp_path / "img.png"
    Image.fromarray(np.full((64, 96, 3), 200, dtype=np.uint8)).save(path)
    long_question = "Read every word: " + " ".join(["word"] * 400) + ". What colour is the image?"
    write_tasks(tmp_path / "tasks.jsonl", [
        Task(id="long", images=[str(path)], question=long_question, answer="grey", answer_type="text"),
        Task(id="short", images=[str(path)], question="What colour is the image?", answer="grey", answer_type="text")])
    config = ROOT / "configs/accelerate/cpu_2proc.yaml"
    if launch == "zero3":  # DeepSpeed's CPU accelerator, 2 processes in one gloo group (train.distributed)
        config = _deepspeed_launch(tmp_path, 3, processes=2, use_cpu=False, port=29577)
    out = tmp_path / "run"
    rows = _launch_rl(config, tiny_models["qwen2_5_vl"], tmp_path / "tasks.jsonl", out, "train.steps=1",
                      "rollout.max_turns=1", "rollout.max_new_tokens_per_turn=8", "train.max_tokens_per_microbatch=2100",
                      "rollout.max_total_tokens=2100", "algo.kl_coef=0.01", timeout=300)
    assert rows[0]["train/samples"] == 2 and rows[0]["kl"] == rows[0]["kl"]  # trained, with a finite KL
    lengths = sorted(len(t.token_ids) for f in ("step_000001.jsonl", "step_000001.r1.jsonl")
                     for t in load_trajectories(out / "rollouts" / f))
    assert lengths[1] < 1050 < lengths[2]  # the premise: short on one process, long on the other
    assert (out / "final" / "model.safetensors").is_file()  # under ZeRO-3: gathered from both processes' shards


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_rl_steps_on_cpu(stage: int, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """ZeRO-2 / ZeRO-3 under accelerate on DeepSpeed's CPU accelerator: two RL steps of two mini-batches each (the
    trainer marks each mini-batch's last micro-batch as DeepSpeed's accumulation boundary), a KL term against a
    reference prepared by DeepSpeed (sharded under ZeRO-3), generation from the gathered ZeRO-3 weights, a DeepSpeed
    checkpoint, and a final model gathered to one full HF checkpoint."""
    from transformers import AutoModelForImageTextToText

    tasks = _random_tasks(tmp_path, 2)
    out = tmp_path / "run"
    launch = _deepspeed_launch(tmp_path, stage, processes=1, use_cpu=True, port=29570 + stage)
    rows = _launch_rl(launch, tiny_models["qwen2_5_vl"], tasks, out, "train.steps=2", "rollout.max_turns=1",
                      "rollout.max_new_tokens_per_turn=8", "train.updates_per_step=2", "algo.kl_coef=0.01",
                      timeout=1200)
    assert [r["train/optimizer_steps"] for r in rows] == [2.0, 2.0]
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6) and all(r["kl"] == r["kl"] for r in rows)  # on-policy, finite
    assert (out / "checkpoint-2" / "pytorch_model").is_dir()  # DeepSpeed's own (sharded) checkpoint
    model = AutoModelForImageTextToText.from_pretrained(out / "final")
    assert sum(p.numel() for p in model.parameters()) > 100_000


@pytest.mark.slow
def test_lora_under_zero3_saves_the_whole_adapter(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """Under ZeRO-3 each process holds a shard of every parameter: the adapter is saved from the gathered weights
    (saved from the main process's own shards, it would be empty), with the base as the KL reference, and merged
    by a main process whose base model must load whole although ZeRO-3 is on. The tiny model's parameters are all
    below DeepSpeed's persistence threshold (kept whole), so the test sets it to 0: every parameter is sharded."""
    from safetensors.torch import load_file

    tasks = _random_tasks(tmp_path, 2)
    out = tmp_path / "run"
    ds = json.loads((ROOT / "configs/deepspeed/zero3.json").read_text())
    ds["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    (tmp_path / "zero3.json").write_text(json.dumps(ds))
    launch = _deepspeed_launch(tmp_path, 3, processes=1, use_cpu=True, port=29575, ds_config=tmp_path / "zero3.json")
    rows = _launch_rl(launch, tiny_models["qwen2_5_vl"], tasks, out, "train.steps=1", "rollout.max_turns=1",
                      "rollout.max_new_tokens_per_turn=8", "algo.kl_coef=0.01", "model.lora.r=8",
                      "model.lora.alpha=16", timeout=1200)
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    a = [v for k, v in adapter.items() if "lora_A" in k]
    assert a and all(v.dim() == 2 and v.shape[0] == 8 and v.shape[1] > 0 for v in a)
    assert (out / "final" / "model.safetensors").is_file()


@pytest.mark.gpu
@pytest.mark.parametrize("stage", [2, 3])
def test_bf16_zero_rl_step_on_one_gpu(stage: int, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """A bf16 RL step under ZeRO-2 / ZeRO-3 on one GPU with the HF engine (generation from the gathered ZeRO-3
    weights), with a KL term against the DeepSpeed-prepared reference; memory per phase is logged."""
    tasks = _random_tasks(tmp_path, 2)
    out = tmp_path / "run"
    launch = _deepspeed_launch(tmp_path, stage, processes=1, use_cpu=False, port=29580 + stage)
    rows = _launch_rl(launch, tiny_models["qwen2_5_vl"], tasks, out, "train.steps=2", "rollout.max_turns=2",
                      "rollout.max_new_tokens_per_turn=16", "model.dtype=bfloat16", "algo.kl_coef=0.01")
    assert [r["train/optimizer_steps"] for r in rows] == [1.0, 1.0]
    assert all(r["loss"] == r["loss"] and r["kl"] == r["kl"] for r in rows)  # finite
    assert rows[-1]["memory/update_peak_gib"] > 0 and rows[-1]["memory/rollout_peak_gib"] > 0
    assert (out / "final" / "model.safetensors").is_file()
