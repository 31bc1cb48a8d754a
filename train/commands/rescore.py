"""`codevl rescore`: re-score saved trajectories under another reward set, without generating anything.

    codevl rescore runs/rl_codevision --rewards configs/rewards/ablations/codevision_no_penalties.yaml
    codevl rescore runs/rl_x/trajectories/step_000010.jsonl --rewards configs/rewards/tapo.yaml --out /tmp/tapo
    codevl rescore runs/rl_x --rewards configs/rewards/codevision.yaml --no-write     # print the table only

Reads `RUN_DIR/trajectories/*.jsonl` (or one .jsonl file), scores them with the reward set (groups by group_id
within each file), writes the trajectories with the new breakdown in `reward` to `--out` (default
`RUN_DIR/rescored/<reward set name>/`) and prints the per-component table: mean raw value, weight, mean weighted
contribution, n/a count and share of failed judge calls, the total, and the mean total recorded at rollout time.
Exit code 2 on a bad reward set or run path. The logic lives in `rewards.rescore`.
"""

from __future__ import annotations

import argparse

from train.user_errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory (with trajectories/*.jsonl) or one trajectories .jsonl file")
    parser.add_argument("--rewards", required=True, help="reward set YAML, e.g. configs/rewards/codevision.yaml")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/rescored/<reward set name>/)")
    parser.add_argument("--no-write", action="store_true", help="only print the table")


def run(args: argparse.Namespace) -> int:
    from rewards import RewardConfigError, RewardError, load_reward_set
    from rewards.rescore import format_table, rescore

    reward_set = load_reward_set(args.rewards)  # RewardConfigError: exit 2 (train.cli)
    try:
        summary = rescore(args.run, reward_set, args.out, write=not args.no_write)
    except (RewardError, ValueError, OSError) as exc:  # a run path without trajectories, an unreadable file
        if isinstance(exc, RewardConfigError):
            raise
        raise UsageError(str(exc)) from None
    print(format_table(summary))
    return 0
