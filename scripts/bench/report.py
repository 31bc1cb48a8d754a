"""Benchmark: writing the HTML report of a large run, against decoding its trajectories first.

    .venv/bin/python scripts/bench/report.py RUN_DIR                   # e.g. a demo or eval run
    .venv/bin/python scripts/bench/report.py RUN_DIR --copies 40 --repeats 3

`codevl view` reads saved trajectories as JSON and links their PNGs (`train.report.episodes.read_episodes`); the
obvious alternative loads them with `rollout.trajectory.load_trajectories`, which decodes every image. The script
makes an RL-shaped run from RUN_DIR's trajectory file (`--copies` step files of it under rollouts/, images shared)
in a temporary folder and times, per repeat:

- read (json): reading every episode the report's way;
- read (decode): `load_trajectories` on every file (what a report built on `Trajectory` objects would pay first);
- report: `write_report` for all episodes (reading, drawing, the page written).

Printed: seconds (best of the repeats), episodes per second, and decode / json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[0] = str(ROOT)  # this folder holds a rollout.py that would shadow the rollout package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a run directory with trajectories/*.jsonl (or rollouts/)")
    ap.add_argument("--copies", type=int, default=20, help="step files in the synthetic RL run")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from rollout.trajectory import load_trajectories
    from train.report.episodes import read_episodes
    from train.report.html import write_report
    from train.report.run_dir import trajectory_files

    src = trajectory_files(args.run)[0]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "rl"
        (run / "rollouts").mkdir(parents=True)
        shutil.copytree(src.parent / "images", run / "rollouts" / "images")
        for k in range(args.copies):
            shutil.copy(src, run / "rollouts" / f"step_{k:06d}.jsonl")
        files = sorted((run / "rollouts").glob("*.jsonl"))
        n = sum(read_episodes(f, limit=0)[1] for f in files)
        times: dict[str, float] = {"read (json)": 1e9, "read (decode)": 1e9, "report": 1e9}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for f in files:
                read_episodes(f)
            times["read (json)"] = min(times["read (json)"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            for f in files:
                load_trajectories(f)
            times["read (decode)"] = min(times["read (decode)"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            page = write_report(run, max_episodes=n, plots=False)
            times["report"] = min(times["report"], time.perf_counter() - t0)
        size = page.stat().st_size
    print(f"{n} episodes in {len(files)} files (from {src}), best of {args.repeats}")
    for k, v in times.items():
        print(f"  {k:<14} {v:7.3f} s   {n / v:9.1f} episodes/s")
    print(f"  decode / json: {times['read (decode)'] / times['read (json)']:.1f}x;  page {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
