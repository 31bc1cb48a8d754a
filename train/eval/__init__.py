"""Evaluation: a policy with a protocol over a benchmark or a task file, and the tables users judge it by.

    from train.eval import evaluate, format_comparison, format_summary
    summary = evaluate(cfg)                        # cfg: train.config.eval.EvalConfig; writes a resumable run dir
    print(format_summary(summary))
    print(format_comparison("runs/eval/before", "runs/eval/after"))

`codevl eval` (train/commands/eval.py) is the command line; the run directory's layout is in `train.eval.runner`.
"""

from train.eval.compare import changed_samples, comparison_rows, format_comparison, load_run
from train.eval.engines import EvalSetupError, build_engine
from train.eval.records import read_records
from train.eval.runner import evaluate, load_eval_tasks, write_outputs
from train.eval.summary import format_summary, summarize

__all__ = ["EvalSetupError", "build_engine", "changed_samples", "comparison_rows", "evaluate", "format_comparison",
           "format_summary", "load_eval_tasks", "load_run", "read_records", "summarize", "write_outputs"]
