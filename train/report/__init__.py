"""Reports of runs: the static HTML viewer (`write_report`), metric plots (`plot_metrics`), run-directory layouts.

    from train.report import plot_metrics, write_report
    pngs = plot_metrics("runs/rl/x")          # RUN/plots/*.png from metrics.jsonl
    html = write_report("runs/rl/x")          # RUN/report.html: episodes, code, images, rewards, plots

`codevl view` and `codevl show` (train/commands/) are the command lines.
"""

from train.report.run_dir import RunDir, RunDirError, read_metrics, scan, trajectory_files

__all__ = ["RunDir", "RunDirError", "read_metrics", "scan", "trajectory_files"]
