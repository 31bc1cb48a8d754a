"""The `codevl` command line: one subcommand per entry point, each defined in its own module.

    codevl --help
    codevl <command> --help
    codevl --version

Subcommand modules are imported only when their command runs, so `codevl --help` is instant and never
imports torch. A subcommand module defines `add_arguments(parser)` and `run(args) -> int`, and may define
`interrupted(args) -> str` (what a Ctrl-C leaves behind, e.g. "the tasks written so far are kept").
To add one, add a row to COMMANDS (name -> module, one-line help).

Errors are handled here, once for every command (see `train.user_errors`): a user's mistake prints
`codevl <command>: <message>` and exits 1 or 2 without a traceback; Ctrl-C exits 130 saying what was kept;
a bug in our code raises with its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from train.user_errors import EXIT_CODES_HELP, FAILED, INTERRUPTED, USAGE, user_error

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


def _load(name: str) -> ModuleType:
    module, _ = COMMANDS[name]
    return importlib.import_module(module)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("codevl")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown (not installed)"


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen subcommand's module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="codevl",
        description="codevl: SFT + RL for code-as-tool vision-language models.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"codevl {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == chosen:
            _load(name).add_arguments(p)
            for action in p._actions:  # nested subcommands (`codevl data synth`) document the codes too
                if isinstance(action, argparse._SubParsersAction):
                    for child in action.choices.values():
                        child.epilog = child.epilog or EXIT_CODES_HELP
                        child.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


# Commands that may run DeepSpeed (through an accelerate config); the others never use it.
USES_DEEPSPEED = ("sft", "rl")


class _DropDeepSpeedCPUNotice:
    """Logging filter: DeepSpeed's "Setting accelerator to CPU" notice."""

    def filter(self, record: object) -> bool:
        return not str(getattr(record, "msg", "")).startswith("Setting accelerator to CPU")


def _quiet_library_warnings(command: str) -> None:
    """Keep DeepSpeed's start-up notice off commands that do not use DeepSpeed.

    When DeepSpeed is installed, transformers/accelerate/TRL import it while models and trainers are built, and on
    a machine without a GPU it logs "Setting accelerator to CPU. If you have GPU ..." to stdout (which would also
    break `--json` output). Its logger is "DeepSpeed" (created at its import, which resets the level but keeps
    filters), so a filter on that logger drops exactly this notice for the commands that never use DeepSpeed."""
    import logging

    ds = logging.getLogger("DeepSpeed")
    if command not in USES_DEEPSPEED and not any(isinstance(f, _DropDeepSpeedCPUNotice) for f in ds.filters):
        ds.addFilter(_DropDeepSpeedCPUNotice())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `codevl` console script (exit codes: see `train.user_errors`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return USAGE
    _quiet_library_warnings(args.command)
    module = _load(args.command)
    command = " ".join([args.command, *([args.data_command] if getattr(args, "data_command", None) else [])])
    try:
        return int(module.run(args) or 0)
    except BrokenPipeError:  # `codevl ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return FAILED
    except KeyboardInterrupt:
        kept = getattr(module, "interrupted", None)
        note = kept(args) if kept is not None else "nothing half-written is left"
        print(f"\ncodevl {command}: interrupted (Ctrl-C); {note}", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:
        reported = user_error(exc)
        if reported is None:
            raise
        print(f"codevl {command}: {reported.message}", file=sys.stderr)
        return reported.exit_code


if __name__ == "__main__":
    sys.exit(main())
