"""The SFT stage under `accelerate launch`: 2 CPU processes (gloo), DeepSpeed ZeRO-2/3 on DeepSpeed's CPU
accelerator (slow: DeepSpeed builds its CPU ops on first use), and a bf16 ZeRO step on one GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from train.run_files import read_metrics

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))


def _launch(config: Path | str, tiny: Path, data: Path, out: Path, *extra: str, timeout: int = 600) -> str:
    cmd = [ACCELERATE, "launch", "--config_file", str(config), "-m", "train.sft",
           "--config", str(ROOT / "configs/sft/tiny_cpu.yaml"), f"model.name_or_path={tiny}",
           f"data.train_files=[{data}]", f"run.output_dir={out}", "train.progress_bar=false", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


def test_two_cpu_processes_train_and_save_one_model(tiny_models: dict[str, Path],
                                                    oracle_sft: tuple[Path, list[Any]], tmp_path: Path) -> None:
    out = tmp_path / "run"
    log = _launch(ROOT / "configs/accelerate/cpu_2proc.yaml", tiny_models["qwen2_5_vl"], oracle_sft[0], out,
                  "train.max_steps=2", "train.max_tokens_per_batch=4096")
    assert log.count("[sft] data:") == 1 and "2 process(es)" in log  # two processes; progress said once, by rank 0
    assert sorted(p.name for p in (out / "final").glob("*.safetensors")) == ["model.safetensors"]
    rows = [r for r in read_metrics(out) if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2]  # one metrics log, written by rank 0 only


def _deepspeed_cpu_config(tmp_path: Path, stage: int) -> Path:
    path = tmp_path / f"ds{stage}.yaml"
    path.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\ndeepspeed_config:\n"
        f"  deepspeed_config_file: {ROOT}/configs/deepspeed/zero{stage}.json\n  zero3_init_flag: false\n"
        "num_machines: 1\nnum_processes: 1\nmachine_rank: 0\nmain_process_ip: 127.0.0.1\n"
        f"main_process_port: {29540 + stage}\nmain_training_function: main\nuse_cpu: true\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_on_cpu_trains_like_plain_and_saves_a_full_model(
        stage: int, tiny_models: dict[str, Path], oracle_sft: tuple[Path, list[Any]], tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    from train.config import load_config
    from train.config.sft import SFTConfig
    from train.sft import run_sft

    plain = run_sft(load_config(SFTConfig, ROOT / "configs/sft/tiny_cpu.yaml", [
        f"model.name_or_path={tiny_models['qwen2_5_vl']}", f"data.train_files=[{oracle_sft[0]}]",
        f"run.output_dir={tmp_path / 'plain'}", "train.max_steps=2", "train.progress_bar=false"]), say=lambda s: None)
    out = tmp_path / "ds"
    _launch(_deepspeed_cpu_config(tmp_path, stage), tiny_models["qwen2_5_vl"], oracle_sft[0], out, "train.max_steps=2")
    ds_losses = [r["loss"] for r in read_metrics(out) if "loss" in r]
    assert ds_losses == pytest.approx(plain.losses, rel=1e-4)
    model = AutoModelForImageTextToText.from_pretrained(out / "final")  # gathered, not a shard
    assert sum(p.numel() for p in model.parameters()) > 100_000


@pytest.mark.gpu
@pytest.mark.parametrize("stage", [2, 3])
def test_bf16_zero_step_on_one_gpu(stage: int, tiny_models: dict[str, Path], oracle_sft: tuple[Path, list[Any]],
                                   tmp_path: Path) -> None:
    path = tmp_path / f"gpu{stage}.yaml"
    path.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\ndeepspeed_config:\n"
        f"  deepspeed_config_file: {ROOT}/configs/deepspeed/zero{stage}.json\n  zero3_init_flag: {str(stage == 3).lower()}\n"
        "num_machines: 1\nnum_processes: 1\nmachine_rank: 0\nmain_training_function: main\nuse_cpu: false\n")
    out = tmp_path / "run"
    _launch(path, tiny_models["qwen2_5_vl"], oracle_sft[0], out, "train.max_steps=3", "train.mixed_precision=bf16",
            "model.dtype=bfloat16", "model.attn_implementation=sdpa")
    losses = [r["loss"] for r in read_metrics(out) if "loss" in r]
    assert len(losses) == 3 and all(x == x for x in losses)  # finite
    assert (out / "final" / "model.safetensors").is_file()
