"""`codevl eval`: evaluate a model (any engine) with a protocol over a benchmark or a task file.

    codevl eval --config configs/eval/tiny_synthetic.yaml model.name_or_path=runs/demo/sft/final
    codevl eval --config configs/eval/vstar.yaml data.path=/data/vstar_bench output_dir=runs/eval/vstar_base
    codevl eval --config configs/eval/vstar.yaml --dry-run          # print the resolved config
    codevl eval compare runs/eval/vstar_base runs/eval/vstar_rl     # two runs side by side

Writes `output_dir/`: summary.json, samples.jsonl (one record per episode), trajectories/eval.jsonl (open with
`codevl view` or `codevl show`), and `{model}_{dataset}.tsv` in VLMEvalKit's result format. Interrupted runs
resume: run the same command again; finished samples are not rerun (`--restart` discards them).
Exit codes: 0 ok; 1 a data failure (bad task file or benchmark, samples that failed); 2 usage (bad config, a
path that does not exist); 130 interrupted (what finished is kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("examples:\n"
                     "  codevl eval --config configs/eval/tiny_synthetic.yaml model.name_or_path=runs/demo/sft/final\n"
                     "  codevl eval compare runs/eval/a runs/eval/b\n"
                     "exit codes: 0 ok; 1 data failures (bad task file, failed samples); 2 usage; 130 interrupted "
                     "(finished samples kept; rerun to resume)")
    parser.add_argument("--config", help="eval YAML, e.g. configs/eval/tiny_synthetic.yaml")
    parser.add_argument("rest", nargs="*", metavar="OVERRIDE",
                        help="dotted overrides (data.limit=20 model.name_or_path=DIR), or: compare RUN_A RUN_B")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config, model and data paths and the reward set; print the resolved config")
    parser.add_argument("--restart", action="store_true", help="discard finished samples in output_dir first")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _compare(paths: list[str]) -> int:
    from train.eval import EvalSetupError, format_comparison

    if len(paths) != 2:
        print("usage: codevl eval compare RUN_A RUN_B (two evaluation run directories)", file=sys.stderr)
        return 2
    try:
        print(format_comparison(paths[0], paths[1]))
    except EvalSetupError as exc:
        print(f"codevl eval compare: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a corrupt samples.jsonl line (file:line in the message)
        print(f"codevl eval compare: {exc}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    if args.rest and args.rest[0] == "compare":
        return _compare(args.rest[1:])
    from train.config import ConfigError, load_config, resolved_yaml
    from train.config.eval import EvalConfig

    if not args.config and not args.rest:
        print("codevl eval: give --config configs/eval/X.yaml (or: codevl eval compare RUN_A RUN_B)", file=sys.stderr)
        return 2
    try:
        cfg = load_config(EvalConfig, args.config, args.rest)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from data.loaders import LoaderError
    from data.task_file import TaskFileError
    from rewards import RewardConfigError
    from train.eval import EvalSetupError, evaluate, format_summary, read_records
    from train.eval.runner import SAMPLES_NAME, preflight

    samples = f"{cfg.output_dir}/{SAMPLES_NAME}"
    if args.dry_run:
        try:
            preflight(cfg)
        except (EvalSetupError, RewardConfigError) as exc:
            print(f"codevl eval: {exc}", file=sys.stderr)
            return 2
        print(resolved_yaml(cfg), end="")
        return 0
    try:
        summary = evaluate(cfg, restart=args.restart, progress=not args.no_progress,
                           say=lambda line: print(line, file=sys.stderr, flush=True))
    except (EvalSetupError, RewardConfigError) as exc:
        print(f"codevl eval: {exc}", file=sys.stderr)
        return 2
    except (TaskFileError, LoaderError) as exc:
        print(f"codevl eval: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        n = len(read_records(samples)) if Path(samples).exists() else 0
        print(f"\ncodevl eval: interrupted; {n} finished sample(s) are kept in {samples}; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    print(format_summary(summary, read_records(samples)))
    print(f"run directory: {cfg.output_dir}/ (summary.json, samples.jsonl, trajectories/eval.jsonl, "
          f"{summary['predictions']}); view it: codevl view {cfg.output_dir}")
    return 1 if summary["failed"] or summary["missing"] else 0

