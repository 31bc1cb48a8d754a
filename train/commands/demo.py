"""`codevl demo`: the whole pipeline on CPU with the tiny model: SFT -> RL -> eval, and a report (train/demo.py).

    codevl demo
    codevl demo --quick                                  # the smaller variant the test suite runs
    codevl demo --config configs/demo/cpu.yaml arch=qwen3_vl rl.steps=5
    codevl demo --dry-run

`--dry-run` runs every check a real run makes before its work (the config, the reward set, the generators'
configs, the protocol) and prints the resolved config.
"""

from __future__ import annotations

import argparse

from train.config import load_config, resolved_yaml
from train.config.demo import QUICK_OVERRIDES, DemoConfig
from train.user_errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="demo YAML (default: built-in defaults, same as configs/demo/cpu.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. sft.steps=60 rewards=configs/rewards/tapo.yaml")
    parser.add_argument("--quick", action="store_true", help="the smaller variant (fewer tasks and steps)")
    parser.add_argument("--dry-run", action="store_true", help="run the checks of a real run, print the config, exit")


def check(cfg: DemoConfig) -> None:
    """What a real run checks before its work: the reward set, generator configs and protocol load."""
    from data.generators import get_generator
    from rewards import load_reward_set
    from rollout.protocols import get_protocol

    load_reward_set(cfg.rewards)  # RewardConfigError: exit 2 (train.cli)
    for name in cfg.data.generators:
        try:
            get_generator(name, cfg.data.generator_config.get(name))
        except ValueError as exc:  # the generator's config model names the bad key and the valid ones
            raise UsageError(f"data.generator_config.{name}: {exc}") from None
    get_protocol(cfg.protocol)


def interrupted(args: argparse.Namespace) -> str:
    return "the stages finished so far are in the output folder; run `codevl demo` again to start over"


def run(args: argparse.Namespace) -> int:
    cfg = load_config(DemoConfig, args.config, [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides])
    check(cfg)
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
