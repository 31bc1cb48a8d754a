"""`codevl config`: validate a run config and print it fully resolved (defaults included).

    codevl config configs/sft/tiny.yaml optim.lr=1e-6 train.epochs=1
    codevl config --kind rl my_rl.yaml

The kind (sft, rl, demo) is taken from the `configs/<kind>/` folder unless --kind is given. A relative path not
found from the working directory is looked up under the project (so `configs/...` works from anywhere). Exit
code 2 and a message naming file:line and key on an invalid config or a missing file.
"""

from __future__ import annotations

import argparse

from train.config import load_config, resolved_yaml
from train.config.kinds import CONFIG_KINDS, config_model, kind_of
from train.config.loader import load_yaml_with_lines
from train.user_errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-6")
    parser.add_argument("--kind", choices=sorted(CONFIG_KINDS), help="config kind (default: from the folder)")


def run(args: argparse.Namespace) -> int:
    load_yaml_with_lines(args.config)  # a missing or unreadable file is reported as such, before the kind
    kind = args.kind or kind_of(args.config)
    if kind is None:
        raise UsageError(f"cannot tell the kind of {args.config} (it is not under configs/<kind>/); pass --kind "
                         f"({', '.join(CONFIG_KINDS)})")
    cfg = load_config(config_model(kind), args.config, args.overrides)  # ConfigError: exit 2 (train.cli)
    print(f"# {kind} config resolved from {args.config}")
    print(resolved_yaml(cfg), end="")
    return 0
