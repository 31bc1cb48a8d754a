"""`write_report(run_dir) -> Path`: one static HTML page for a run (rollouts, evaluation, SFT or RL), offline.

    from train.report.html import write_report
    path = write_report("runs/eval/vstar")                       # runs/eval/vstar/report.html
    path = write_report("runs/rl/x", max_episodes=200, embed_images=True)   # one self-contained file

The page: what the run is and its summary (an evaluation's accuracy tables, tool use and faithfulness table; a
demo's summary), the metric plots (`train.report.plots`, written to RUN/plots/), filters (correct / wrong, finish
reason, task type, reward range, text), a table of the episodes per task (question, ground truth, answer, correct,
reward), and every episode (`train.report.episodes`). No server and no CDN: the style and the filter script are
inline, images are relative links to the run's PNGs (or embedded with `embed_images`), so the page opens from the
file system and can be moved together with the run directory.

Large RL runs: at most `max_episodes` episodes are drawn, spread evenly over the trajectory files (the first ones
of each file); the page says how many were left out.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

from train.eval.predictions import answer_text
from train.report.assets import CSS, JS
from train.report.episodes import Episode, data_attrs, episode_html, esc, fmt, highlight_css, read_episodes, verdict
from train.report.plots import plot_metrics
from train.report.run_dir import RunDir, scan

REPORT_NAME = "report.html"


def _image_src(out_dir: Path, embed: bool) -> Any:
    def src(path: Path) -> str:
        if embed:
            try:
                return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
            except OSError:
                return ""
        return urllib.parse.quote(Path(os.path.relpath(path, out_dir)).as_posix())
    return src


def _eval_correctness(rd: RunDir) -> dict[str, bool | None]:
    if rd.samples is None:
        return {}
    from train.eval.records import read_records

    return {r["trajectory"]["id"]: r.get("correct") for r in read_records(rd.samples)}


def collect_episodes(rd: RunDir, max_episodes: int) -> tuple[list[Episode], int]:
    """Up to `max_episodes` episodes spread over the run's trajectory files, and how many there are in all."""
    correctness = _eval_correctness(rd)
    per_file = max(1, max_episodes // max(1, len(rd.trajectory_files)))
    episodes: list[Episode] = []
    total = 0
    for f in rd.trajectory_files:
        eps, n = read_episodes(f, limit=per_file, correctness=correctness)
        episodes += eps
        total += n
    episodes = episodes[:max_episodes]
    episodes.sort(key=lambda e: (e.rl_step if e.rl_step is not None else -1, str(e.task.get("id")), e.id))
    return episodes, total


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def eval_summary_html(s: dict[str, Any]) -> str:
    """An evaluation's summary.json as tables."""
    a = s["accuracy"]
    rows = [f"<tr><td>overall</td><td></td><td class=num>{_pct(a['overall']['accuracy'])}</td>"
            f"<td class=num>{a['overall']['correct']}/{a['overall']['n']}</td></tr>"]
    for dim in ("source", "category", "transform"):
        for k, v in (a.get(f"by_{dim}") or {}).items():
            rows.append(f"<tr><td>{dim}</td><td>{esc(k)}</td><td class=num>{_pct(v['accuracy'])}</td>"
                        f"<td class=num>{v['correct']}/{v['n']}</td></tr>")
    t = s["tools"]
    tools = (f"<tr><td>calls per sample</td><td class=num>{fmt(t['calls_per_sample'])}</td></tr>"
             f"<tr><td>samples with any call</td><td class=num>{_pct(t['any_call_rate'])}</td></tr>"
             f"<tr><td>samples with code that executes</td><td class=num>{_pct(t['executing_code_rate'])}</td></tr>"
             f"<tr><td>samples answered</td><td class=num>{_pct(t['answered_rate'])}</td></tr>"
             f"<tr><td>code error rate ({t['code_blocks']} blocks)</td>"
             f"<td class=num>{_pct(t['code_error_rate'])}</td></tr>"
             + "".join(f"<tr><td>op {esc(k)} (share of samples)</td><td class=num>{_pct(v)}</td></tr>"
                       for k, v in t["ops_share_of_samples"].items())
             + "".join(f"<tr><td>finish {esc(k)}</td><td class=num>{v}</td></tr>"
                       for k, v in t["finish_reasons"].items()))
    f = s.get("faithfulness") or {}
    ft = f.get("table") or {}
    faith = ""
    if ft and sum(ft.values()):
        faith = (f"<h3>faithfulness (CodeV protocol)</h3><table><tr><th></th><th>correct</th><th>wrong</th></tr>"
                 f"<tr><th>faithful</th><td class=num>{ft['faithful_correct']}</td>"
                 f"<td class=num>{ft['faithful_wrong']}</td></tr>"
                 f"<tr><th>unfaithful</th><td class=num>{ft['unfaithful_correct']}</td>"
                 f"<td class=num>{ft['unfaithful_wrong']}</td></tr></table>"
                 f"<div>P(correct | faithful) = {fmt(f.get('p_correct_given_faithful'))}; P(faithful | correct) = "
                 f"{fmt(f.get('p_faithful_given_correct'))}</div>")
    tm = s.get("timing") or {}
    failures = "".join(f"<li>{esc(f['key'])}: {esc(f['finish_reason'])}: {esc(f.get('error'))}</li>"
                       for f in s.get("failures") or [])
    if failures:
        failures = (f"<div class=err><b>{s['failed']} failed sample(s)</b> (engine or sandbox errors; not counted "
                    f"in accuracy; rerun the evaluation to retry them)<ul>{failures}</ul></div>")
    return (f"<p>model <b>{esc(s.get('model'))}</b> ({esc(s.get('engine'))}) on <b>{esc(s.get('dataset'))}</b>, "
            f"protocol {esc(s.get('protocol'))}: {s['samples']} samples, {s['failed']} failed, {s['unscored']} unscored"
            f"{'; ' + str(s['missing']) + ' not run yet' if s.get('missing') else ''}. Predictions for VLMEvalKit: "
            f"<code>{esc(s.get('predictions'))}</code></p>"
            f"<div style='display:flex;gap:24px;flex-wrap:wrap'><div><h3>accuracy</h3><table><tr><th>by</th><th></th>"
            f"<th>accuracy</th><th>n</th></tr>{''.join(rows)}</table></div><div><h3>tool use</h3><table>{tools}</table>"
            f"</div><div>{faith}<h3>time per episode</h3><div>{fmt(tm.get('wall_s_mean'))} s (generation "
            f"{fmt(tm.get('generate_s_mean'))} s, sandbox {fmt(tm.get('sandbox_s_mean'))} s)</div></div></div>"
            f"{failures}")


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict) and d:
        out: list[tuple[str, Any]] = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, d)]


def _compact(v: Any) -> str:
    if isinstance(v, list) and len(v) > 8 and all(isinstance(x, (int, float)) for x in v):
        return f"{len(v)} values: {fmt(v[0], 4)}, {fmt(v[1], 4)}, ... {fmt(v[-1], 4)}"
    if isinstance(v, float):
        return fmt(v, 4)
    return esc(json.dumps(v) if isinstance(v, (list, dict)) else v)


def generic_summary_html(s: dict[str, Any]) -> str:
    """Any other summary.json (the demo's): its keys flattened into one table, long number lists shortened."""
    flat = _flatten(s)
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{_compact(v)}</td></tr>" for k, v in flat)
    opened = " open" if len(flat) <= 30 else ""
    return f"<details{opened}><summary>summary.json</summary><table>{rows}</table></details>"


def filters_html(episodes: list[Episode]) -> str:
    def boxes(name: str, values: list[str]) -> str:
        return "".join(f'<label><input type="checkbox" name="{name}" value="{esc(v)}" checked> {esc(v)}</label> '
                       for v in values)

    finishes = sorted({e.finish for e in episodes})
    types = sorted({e.task_type for e in episodes})
    return (f'<div id="filters"><fieldset><legend>answer</legend>{boxes("correct", ["yes", "no", "unknown"])}'
            f'</fieldset>'
            f'<fieldset><legend>finish reason</legend>{boxes("finish", finishes)}</fieldset>'
            f'<fieldset><legend>task type</legend>{boxes("type", types)}</fieldset>'
            f'<fieldset><legend>reward</legend><input type="number" id="rmin" step="any" placeholder="min"> to '
            f'<input type="number" id="rmax" step="any" placeholder="max"></fieldset>'
            f'<fieldset><legend>id or question</legend><input type="search" id="q"></fieldset>'
            f'<button id="reset" type="button">show all</button> showing <b id="shown-count">{len(episodes)}</b> of '
            f'{len(episodes)} episodes</div>')


def _clip(text: Any, n: int) -> Any:
    return text if not isinstance(text, str) or len(text) <= n else text[:n] + "..."


def task_table_html(episodes: list[Episode], anchors: dict[str, str]) -> str:
    """One block of rows per task: its question and ground truth, then each episode's answer, verdict, reward."""
    by_task: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        by_task[str(e.task.get("id"))].append(e)
    rows = []
    for tid, eps in by_task.items():
        t = eps[0].task
        q = _clip(t["question"], 160)
        for i, e in enumerate(eps):
            first = (f'<td rowspan="{len(eps)}">{esc(tid)}</td><td rowspan="{len(eps)}">{esc(q)}</td>'
                     f'<td rowspan="{len(eps)}">{esc(answer_text(t.get("answer")))}</td>') if i == 0 else ""  # type: ignore[arg-type]
            rows.append(f'<tr class="eprow" {data_attrs(e)}>{first}<td><a href="#{anchors[e.id]}">{esc(e.id)}</a>'
                        f'{" (step " + str(e.rl_step) + ")" if e.rl_step is not None else ""}</td>'
                        f'<td>{esc(_clip(e.data.get("answer"), 120))}</td><td>{verdict(e.correct)}</td>'
                        f'<td class=num>{fmt(e.reward_total)}</td><td>{esc(e.finish)}</td>'
                        f'<td class=num>{len(e.data.get("steps") or [])}</td></tr>')
    return ("<table id=tasks><tr><th>task</th><th>question</th><th>ground truth</th><th>episode</th><th>answer</th>"
            "<th>correct</th><th>reward</th><th>finish</th><th>steps</th></tr>" + "".join(rows) + "</table>")


def write_report(run_dir: str | Path, out: str | Path | None = None, *, max_episodes: int = 300,
                 embed_images: bool = False, plots: bool = True) -> Path:
    """Write the HTML report of `run_dir` (a run directory or one trajectory file); returns the page's path
    (default `RUN/report.html`). Raises `RunDirError` when there is nothing to show."""
    rd = scan(run_dir)
    out_path = Path(out) if out is not None else rd.root / REPORT_NAME
    out_path.parent.mkdir(parents=True, exist_ok=True)
    src = _image_src(out_path.parent.resolve(), embed_images)
    episodes, total = collect_episodes(rd, max_episodes)
    anchors = {e.id: f"ep-{i}" for i, e in enumerate(episodes)}
    body = [f"<header><h1>codevl report: {esc(rd.root.name or rd.root)}</h1><div class=sub>{esc(rd.kind)} run at "
            f"{esc(rd.root.resolve())}; {len(rd.trajectory_files)} trajectory file(s), {total} episode(s)"
            "</div></header>",
            "<main>"]
    if rd.summary is not None:
        s = json.loads(rd.summary.read_text())
        body.append("<h2>summary</h2>")
        body.append(eval_summary_html(s) if rd.kind == "eval" and "accuracy" in s
                    else generic_summary_html(s))
    pngs = plot_metrics(rd.root) if plots and rd.metrics is not None else []
    if pngs:
        body.append("<h2>metrics per step</h2><div class=plots>" + "".join(
            f'<img src="{esc(src(p.resolve()))}" alt="{esc(p.stem)}">' for p in pngs) + "</div>")
    if episodes:
        if total > len(episodes):
            body.append(f"<p class=unknown>showing {len(episodes)} of {total} episodes (the first of each of the "
                        f"{len(rd.trajectory_files)} file(s)); raise --max-episodes to see more</p>")
        body.append("<h2>episodes</h2>" + filters_html(episodes))
        body.append("<h2>episodes per task</h2>" + task_table_html(episodes, anchors))
        body.append("<h2>episode details</h2>" + "".join(episode_html(e, anchors[e.id], src) for e in episodes))
    if rd.config is not None:
        body.append(f"<h2>config</h2><details><summary>{esc(rd.config.name)}</summary>"
                    f"<pre>{esc(rd.config.read_text())}</pre></details>")
    body.append("</main>")
    page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>codevl report: {esc(rd.root.name)}</title>"
            f"<style>{CSS}{highlight_css()}</style><script>{JS}</script></head><body>{''.join(body)}</body></html>")
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out_path)
    return out_path
