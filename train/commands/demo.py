"""`codevl demo`: the whole pipeline on CPU with the tiny model: SFT -> RL -> eval, and a report (train/demo.py).

    codevl demo
    codevl demo --quick                                  # the smaller variant the test suite runs
    codevl demo --config configs/demo/cpu.yaml arch=qwen3_vl rl.steps=5
    codevl demo --dry-run
"""

from __future__ import annotations

import argparse
import sys

from train.config import ConfigError, load_config, resolved_yaml
from train.config.demo import QUICK_OVERRIDES, DemoConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="demo YAML (default: built-in defaults, same as configs/demo/cpu.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. sft.steps=60 rewards=configs/rewards/tapo.yaml")
    parser.add_argument("--quick", action="store_true", help="the smaller variant (fewer tasks and steps)")
    parser.add_argument("--dry-run", action="store_true", help="check the config and the reward set, print, exit")


def run(args: argparse.Namespace) -> int:
    from rewards import load_reward_set
    from rewards.errors import RewardConfigError
    from train.config.loader import resolve_path

    try:
        overrides = [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides]
        cfg = load_config(DemoConfig, resolve_path(args.config) if args.config else None, overrides)
        load_reward_set(resolve_path(cfg.rewards))  # the same check a real run makes first
    except (ConfigError, RewardConfigError) as exc:
        print(f"codevl demo: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(resolved_yaml(cfg), end="")
        return 0
    from train.demo import headline, run_demo

    s = run_demo(cfg, say=lambda line: print(line, flush=True))
    print()
    for line in headline(s["stages"]):
        print(line)
    print(f"\ndone in {s['seconds']:.0f} s; report: {s['report']}")
    print(f"look at it in a browser, or in the terminal: codevl show {cfg.output_dir}/eval/rl/trajectories/eval.jsonl")
    return 0
