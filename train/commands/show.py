"""`codevl show`: saved trajectories in the terminal (turns, code, sandbox results, answer, reward).

    codevl show runs/eval/vstar/trajectories/eval.jsonl --id "vstar_12#0"
    codevl show runs/demo/trajectories/rollouts.jsonl --list          # one line per trajectory
    codevl show runs/rl/x                                             # a run directory: all its trajectory files

Accepts a trajectory .jsonl file or a run directory (the layouts `codevl view` reads). Exit codes: 0 ok; 1 a file
that is not valid trajectory JSONL (file:line named) or an --id that is not there; 2 a path that does not exist.
"""

from __future__ import annotations

import argparse
import signal
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "exit codes: 0 ok; 1 a bad file or an unknown --id; 2 a path that does not exist"
    parser.add_argument("path", help="a trajectories .jsonl file, or a run directory")
    parser.add_argument("--id", action="append", default=None, help="show only this trajectory id (repeatable)")
    parser.add_argument("--list", action="store_true", help="one line per trajectory: id, finish, answer, reward")
    parser.add_argument("--max-chars", type=int, default=4000, help="cut each turn's text after this many characters")


def _line(tr) -> str:  # noqa: ANN001 - a Trajectory
    total = (tr.reward or {}).get("total")
    reward = "-" if total is None else f"{total:.3f}"
    finish = tr.finish_reason.value if tr.finish_reason else "-"
    return f"{tr.id}\t{finish}\tsteps={len(tr.steps)}\tanswer={tr.answer!r}\ttruth={tr.task.answer!r}\treward={reward}"


def run(args: argparse.Namespace) -> int:
    from rollout.pretty import format_trajectory
    from rollout.trajectory import iter_trajectories
    from train.report.run_dir import RunDirError, trajectory_files

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `codevl show ... | head` ends quietly
    try:
        files = trajectory_files(args.path)
    except RunDirError as exc:
        print(f"codevl show: {exc}", file=sys.stderr)
        return 2
    wanted = set(args.id or [])
    found: set[str] = set()
    try:
        for f in files:
            for tr in iter_trajectories(f):
                if wanted and tr.id not in wanted:
                    continue
                found.add(tr.id)
                if args.list:
                    print(_line(tr))
                else:
                    print(f"# {f}")
                    print(format_trajectory(tr, max_chars=args.max_chars))
                    if tr.reward:
                        steps = ", ".join(f"{x:.3f}" for x in tr.reward.get("steps", []))
                        print(f"reward: total {tr.reward['total']:.3f} (episode {tr.reward['episode']:.3f}; "
                              f"steps [{steps}])")
                    print()
    except ValueError as exc:  # a bad line: file:line in the message
        print(f"codevl show: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ncodevl show: interrupted while reading {', '.join(map(str, files))}", file=sys.stderr)
        return 130
    missing = wanted - found
    if missing:
        print(f"codevl show: no trajectory with id {', '.join(sorted(missing))} in {', '.join(map(str, files))} "
              "(list them with --list)", file=sys.stderr)
        return 1
    if not found:
        print(f"codevl show: {', '.join(map(str, files))} holds no trajectories", file=sys.stderr)
        return 1
    return 0
