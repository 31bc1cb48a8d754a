"""`codevl sft`: stage 1, supervised fine-tuning on trajectories (see train/sft.py).

    codevl sft --config configs/sft/tiny_cpu.yaml
    codevl sft --config configs/sft/codevision_qwen2_5_vl_7b.yaml optim.lr=1e-5 --dry-run
    accelerate launch --config_file configs/accelerate/zero3.yaml -m train.sft --config configs/sft/X.yaml   # multi-GPU
"""

from __future__ import annotations

import argparse

from train import sft


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sft.add_arguments(parser)


def interrupted(args: argparse.Namespace) -> str:
    """What a Ctrl-C leaves behind (train.cli prints it)."""
    return ("complete checkpoints in the run's output_dir are kept (a checkpoint counts once its trainer_state.json "
            "is written); the same command resumes from the newest one (train.resume=auto)")


def run(args: argparse.Namespace) -> int:
    return sft.run_command(args)
