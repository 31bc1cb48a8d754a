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


def run(args: argparse.Namespace) -> int:
    return rl.run_command(args)
