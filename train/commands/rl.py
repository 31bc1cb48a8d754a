"""`codevl rl`: stage 2, GRPO with outcome or dense tool-aware advantages (see train/rl.py).

    codevl rl --config configs/rl/tiny_cpu.yaml
    codevl rl --config configs/rl/codevision_qwen2_5_vl_7b.yaml --dry-run
    accelerate launch --config_file configs/accelerate/ddp.yaml -m train.rl --config configs/rl/X.yaml   # multi-GPU
"""

from __future__ import annotations

import argparse
import sys

from train.config import load_config, resolved_yaml
from train.config.loader import project_path
from train.config.rl import RLConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="RL YAML, e.g. configs/rl/tiny_cpu.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. algo.advantage=dense train.steps=10")
    parser.add_argument("--dry-run", action="store_true", help="validate the config, tasks and reward set, print, exit")


def interrupted(args: argparse.Namespace) -> str:
    """What a Ctrl-C leaves behind (train.cli prints it)."""
    return ("complete checkpoints in the run's output_dir are kept (a checkpoint counts once its rl_state.json is "
            "written) with metrics.jsonl and the saved rollouts; the same command resumes from the newest checkpoint "
            "(train.resume=auto)")


def run(args: argparse.Namespace) -> int:
    """Validate (and with --dry-run print) the config, tasks and reward set, then train. A user's mistake raises
    one of the types `train.user_errors` maps to a message and an exit code; a task file named in the config that
    is missing is the run's data failing (exit 1, as `codevl sft` reports a missing data file), not a bad option."""
    try:
        return _run(args)
    except (FileNotFoundError, IsADirectoryError) as exc:
        print(f"codevl rl: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from train.rl import run_rl

    cfg = load_config(RLConfig, str(project_path(args.config)), args.overrides)
    if args.dry_run:
        from data import read_tasks
        from rewards import load_reward_set

        n = sum(len(read_tasks(str(project_path(f)))) for f in cfg.data.train_files)
        rs = load_reward_set(str(project_path(cfg.rewards)))
        if cfg.rollout.engine == "vllm_colocate":  # the engine is built in this process: vLLM must import
            from rollout.engines.vllm_requests import import_vllm

            import_vllm()
        print(resolved_yaml(cfg), end="")
        print(f"# {n} tasks; reward set {rs.name!r}: {', '.join(c.key for c in rs)}")
        return 0
    run_rl(cfg)
    return 0
