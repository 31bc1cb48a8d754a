"""The `codevl` command line: one subcommand per entry point, each defined in its own module.

    codevl --help
    codevl <command> --help

Subcommand modules are imported only when their command runs, so `codevl --help` is instant and never
imports torch. A subcommand module defines `add_arguments(parser)` and `run(args) -> int`.
To add one, add a row to COMMANDS (name -> module, one-line help).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module defining add_arguments/run, one-line help). Keep sorted by pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("train.commands.demo", "run the whole pipeline on CPU with the tiny model and synthetic data"),
    "tiny-model": ("train.commands.tiny_model", "build a tiny randomly initialised Qwen-VL model offline"),
    "config": ("train.commands.config", "resolve a run config (YAML + dotted overrides) and print it"),
    "data": ("train.commands.data", "synthesise, convert, validate, curate and summarise training data"),
    "sft": ("train.commands.sft", "stage 1: supervised fine-tuning on code-as-tool trajectories (TRL)"),
    "rl": ("train.commands.rl", "stage 2: GRPO with outcome or dense tool-aware advantages, rollouts in the sandbox"),
    "infer": ("train.commands.infer", "run any model as a code-writing agent on an image (PyVision-style)"),
    "sandbox": ("train.commands.sandbox", "run a Python file in a sandbox session; print the result and layers"),
    "rescore": ("train.commands.rescore", "re-score saved trajectories under another reward set and print the table"),
    "eval": ("train.commands.eval", "evaluate a model on a benchmark or task file; compare two evaluations"),
    "view": ("train.commands.view", "write a static HTML report of a run: episodes, code, images, rewards, plots"),
    "show": ("train.commands.show", "print saved trajectories in the terminal"),
}


def _load(name: str):  # noqa: ANN202 - returns a module
    module, _ = COMMANDS[name]
    return importlib.import_module(module)


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen subcommand's module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="codevl",
        description="codevl: SFT + RL for code-as-tool vision-language models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `codevl` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(_load(args.command).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
