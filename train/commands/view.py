"""`codevl view`: one static HTML report of a run, opened from the file system (no server, no CDN).

    codevl view runs/eval/vstar                     # -> runs/eval/vstar/report.html
    codevl view runs/rl/x --max-episodes 500        # RL: rollouts/step_*.jsonl, plots from metrics.jsonl
    codevl view runs/demo --embed-images --out /tmp/demo.html    # one self-contained file to send around
    codevl view runs/sft/x                          # SFT: the plots and the config

Reads evaluation runs (samples.jsonl, trajectories/eval.jsonl), rollout runs (trajectories/*.jsonl), RL runs
(rollouts/step_*.jsonl, metrics.jsonl), SFT runs (metrics.jsonl) or one trajectory .jsonl file. The page shows
every turn's text and highlighted code, sandbox output and errors, input images with the evidence boxes and the
regions the code showed, output images, the reward breakdown per step and per episode, plots, a per-task table,
and filters (correct / wrong, finish reason, task type, reward range; kept in the URL after `#`).
Exit codes: 0 ok; 1 a file that cannot be read (named with its line); 2 a path that does not exist or holds
nothing to show.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("reads: RUN/trajectories/*.jsonl (demo, eval), RUN/rollouts/step_*.jsonl + metrics.jsonl (RL), "
                     "metrics.jsonl (SFT), or one .jsonl file\n"
                     "filters are kept in the URL: report.html#correct=no&finish=answered&type=ocr&rmin=0.5\n"
                     "exit codes: 0 ok; 1 an unreadable file; 2 a path that does not exist or holds nothing to show")
    parser.add_argument("run", help="run directory, or one trajectories .jsonl file")
    parser.add_argument("--out", default=None, help="HTML file to write (default RUN/report.html)")
    parser.add_argument("--max-episodes", type=int, default=300, help="most episodes drawn (spread over the files)")
    parser.add_argument("--embed-images", action="store_true", help="embed images in the page (one movable file)")
    parser.add_argument("--no-plots", action="store_true", help="do not (re)draw plots from metrics.jsonl")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from train.report.html import write_report
    from train.report.run_dir import RunDirError

    if args.max_episodes <= 0:
        print("codevl view: --max-episodes must be positive", file=sys.stderr)
        return 2
    if not Path(args.run).exists():
        print(f"codevl view: {args.run} does not exist (give a run directory or a trajectories .jsonl file)",
              file=sys.stderr)
        return 2
    try:
        path = write_report(args.run, args.out, max_episodes=args.max_episodes, embed_images=args.embed_images,
                            plots=not args.no_plots)
    except RunDirError as exc:
        msg = str(exc)
        print(f"codevl view: {msg}", file=sys.stderr)
        return 2 if msg.startswith(("nothing to show", "no trajectories")) or "is not a .jsonl" in msg else 1
    except (ValueError, OSError) as exc:  # e.g. a trajectory whose task no longer validates, an unreadable file
        print(f"codevl view: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ncodevl view: interrupted; nothing written for {args.run}", file=sys.stderr)
        return 130
    print(f"report: {path.resolve()}")
    print(f"open it in a browser: file://{path.resolve()}")
    return 0
