"""The RL stage under `accelerate launch` with 2 CPU processes (gloo): each process rolls out its share of the
step's tasks, advantages are computed over the whole step, gradients are averaged, and one model is saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from rollout.task import Task
from rollout.trajectory import load_trajectories

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))


def test_two_cpu_processes_run_rl_steps_and_save_one_model(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from data import write_tasks

    rng = np.random.RandomState(0)
    tasks = []
    for i in range(4):
        path = tmp_path / f"t{i}.png"
        Image.fromarray(rng.randint(0, 255, (64, 96, 3), dtype=np.uint8)).save(path)
        tasks.append(Task(id=f"t{i}", images=[str(path)], question=f"What is in square {i}?", answer="red",
                          answer_type="text", evidence=[{"box": [0, 0, 20, 20]}], required_ops=["crop"]))
    write_tasks(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "run"
    cmd = [ACCELERATE, "launch", "--config_file", str(ROOT / "configs/accelerate/cpu_2proc.yaml"), "-m", "train.rl",
           "--config", str(ROOT / "configs/rl/tiny_cpu.yaml"), f"model.name_or_path={tiny_models['qwen2_5_vl']}",
           f"data.train_files=[{tmp_path / 'tasks.jsonl'}]", f"run.output_dir={out}", "train.steps=2",
           "train.prompts_per_step=2", "rollout.num_generations=2", "rollout.max_turns=1",
           "rollout.max_new_tokens_per_turn=8", "algo.filter_all_equal_groups=false", "train.progress_bar=false",
           "rewards=configs/rewards/deepeyes.yaml"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # one log, written by the main process
    assert all(r["train/samples"] == 2 for r in rows)  # each process trained on its own task's 2 episodes
    # both processes saved their rollouts: rank 0's file and rank 1's
    assert len(load_trajectories(out / "rollouts" / "step_000001.jsonl")) == 2
    assert len(load_trajectories(out / "rollouts" / "step_000001.r1.jsonl")) == 2
    assert (out / "final" / "model.safetensors").is_file() and (out / "checkpoint-2" / "rl_state.json").is_file()
