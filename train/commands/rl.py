"""`codevl rl`: stage 2, GRPO with outcome or dense tool-aware advantages (see train/rl.py).

    codevl rl --config configs/rl/tiny_cpu.yaml
    codevl rl --config configs/rl/codevision_qwen2_5_vl_7b.yaml --dry-run
    accelerate launch --config_file configs/accelerate/ddp.yaml -m train.rl --config configs/rl/X.yaml   # multi-GPU
"""

from __future__ import annotations

import argparse

from train import rl


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rl.add_arguments(parser)


def interrupted(args: argparse.Namespace) -> str:
    """What a Ctrl-C leaves behind (train.cli prints it)."""
    return ("complete checkpoints in the run's output_dir are kept (a checkpoint counts once its rl_state.json is "
            "written) with metrics.jsonl and the saved rollouts; the same command resumes from the newest checkpoint "
            "(train.resume=auto)")


def run(args: argparse.Namespace) -> int:
    return rl.run_command(args)
