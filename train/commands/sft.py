"""`codevl sft`: stage 1, supervised fine-tuning on trajectories (see train/sft.py).

    codevl sft --config configs/sft/tiny_cpu.yaml
    codevl sft --config configs/sft/codevision_qwen2_5_vl_7b.yaml optim.lr=1e-5 --dry-run
    accelerate launch --config_file configs/accelerate/zero3.yaml -m train.sft --config configs/sft/X.yaml   # multi-GPU
"""

from __future__ import annotations

import argparse

from train.config import load_config, resolved_yaml
from train.config.loader import project_path
from train.config.sft import SFTConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="SFT YAML, e.g. configs/sft/tiny_cpu.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-5 train.max_steps=100")
    parser.add_argument("--dry-run", action="store_true", help="validate config and data, print the config, exit")


def interrupted(args: argparse.Namespace) -> str:
    """What a Ctrl-C leaves behind (train.cli prints it)."""
    return ("complete checkpoints in the run's output_dir are kept (a checkpoint counts once its trainer_state.json "
            "is written); the same command resumes from the newest one (train.resume=auto)")


def run(args: argparse.Namespace) -> int:
    """Validate (and with --dry-run print) the config and data, then train. A user's mistake raises one of the
    types `train.user_errors` maps to a message and an exit code."""
    from train.sft import build_datasets, run_sft

    cfg = load_config(SFTConfig, str(project_path(args.config)), args.overrides)
    if args.dry_run:
        from train.model.processor import load_processor

        processor = load_processor(cfg.model.name_or_path, min_pixels=cfg.model.min_pixels,
                                   max_pixels=cfg.model.max_pixels)
        _, _, info = build_datasets(cfg, processor)
        print(resolved_yaml(cfg), end="")
        print(f"# data: {info['summary']}")
        return 0
    run_sft(cfg)
    return 0
