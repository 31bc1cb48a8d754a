"""`codevl demo`: the whole pipeline that exists so far, on CPU, with the tiny model (see train/demo.py).

    codevl demo
    codevl demo --config configs/demo/cpu.yaml arch=qwen3_vl rollout.samples_per_task=8
    codevl demo --dry-run

`--dry-run` runs every check a real run makes before its work (the config, the reward set, the generators'
configs, the protocol) and prints the resolved config.
"""

from __future__ import annotations

import argparse

from train.config import load_config, resolved_yaml
from train.config.demo import DemoConfig
from train.user_errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="demo YAML (default: built-in defaults, same as configs/demo/cpu.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. sft.steps=60 rewards=configs/rewards/tapo.yaml")
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
    cfg = load_config(DemoConfig, args.config, args.overrides)
    check(cfg)
    if args.dry_run:
        print(resolved_yaml(cfg), end="")
        return 0
    from train.demo import run_demo

    s = run_demo(cfg, say=lambda line: print(line, flush=True))
    ro, rw = s["rollout"], s["rewards"]
    print(f"\nsummary: {s['tasks']} tasks, {s['oracle']['trajectories']} oracle trajectories, SFT loss "
          f"{s['sft_losses'][0]} -> {s['sft_losses'][-1]}, {ro['episodes']} episodes "
          f"({ro['code_steps']} code blocks), mean reward {rw['total_mean']} under {rw['reward_set']!r}, "
          f"{rw.get('groups_with_spread', 0)}/{rw.get('groups', 0)} groups with reward spread")
    print(f"done in {s['seconds']} s; config, data, trajectories and summary.json in {cfg.output_dir}/")
    print(f"re-score this run under another reward set: codevl rescore {cfg.output_dir} "
          "--rewards configs/rewards/tapo.yaml")
    return 0
