"""Episodes for the HTML report: read from saved trajectory JSONL without decoding any image, and drawn as HTML.

The report reads the saved format (`rollout.trajectory`, schema `SCHEMA_VERSION`) as JSON: images stay files on
disk and are linked (or embedded) rather than decoded, so a report over thousands of RL rollouts stays cheap.
Drawn per episode: the task (question, ground truth, evidence), the input images with the evidence boxes and the
region every shown image came from (`ExecResult` images carry `region`, a box in original pixels), each turn's text
with its code highlighted, the sandbox's status, stdout, errors and output images, and the reward breakdown per
step and per episode.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewards.metrics import ACCURACY_COMPONENTS
from rollout.trajectory import SCHEMA_VERSION
from train.eval.predictions import answer_text
from train.report.run_dir import RunDirError, step_of

STEP_COLOURS = ("#d1242f", "#0969da", "#bf8700", "#8250df", "#1a7f37", "#e16f24", "#57606a")
ImageSrc = Callable[[Path], str]


@dataclass
class Episode:
    """One saved trajectory as JSON, where it came from, and its answer's correctness (None: unknown)."""

    data: dict[str, Any]
    file: Path
    line: int
    correct: bool | None
    rl_step: int | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def task(self) -> dict[str, Any]:
        return self.data["task"]

    @property
    def finish(self) -> str:
        return str(self.data.get("finish_reason") or "none")

    @property
    def reward_total(self) -> float | None:
        r = self.data.get("reward") or {}
        return float(r["total"]) if r.get("total") is not None else None

    @property
    def task_type(self) -> str:
        from train.eval.records import CATEGORY_KEYS

        meta = self.task.get("metadata") or {}
        return next((str(meta[k]) for k in CATEGORY_KEYS if meta.get(k) not in (None, "")), self.task.get("source")
                    or "unknown")

    def image_path(self, ref: str) -> Path:
        return self.file.parent / ref


def recorded_correct(data: dict[str, Any]) -> bool | None:
    """Correctness from the accuracy component of the recorded reward breakdown, else by rule-based matching of the
    saved answer against the task (`rewards.match_answer`)."""
    for comp in ((data.get("reward") or {}).get("components") or {}).values():
        if comp.get("name") in ACCURACY_COMPONENTS and comp.get("status") == "ok":
            c = (comp.get("info") or {}).get("correct")
            if isinstance(c, bool):
                return c
    from rewards.answers import match_answer
    from rollout.task import Task

    task = Task.model_validate(data["task"])
    if task.metadata.get("unlabelled"):
        return None
    return match_answer(data.get("answer"), task).correct


def read_episodes(path: Path, *, limit: int | None = None,
                  correctness: dict[str, bool | None] | None = None) -> tuple[list[Episode], int]:
    """The first `limit` episodes of one trajectory file and how many the file holds; a bad line is an error
    naming file:line (a torn last line is skipped)."""
    out: list[Episode] = []
    total = 0
    lines = path.read_text().split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError as exc:
            if i == len(lines):
                break
            raise RunDirError(f"{path}:{i}: not valid JSON: {exc}") from None
        if not isinstance(d, dict) or d.get("schema") != SCHEMA_VERSION or "task" not in d or "id" not in d:
            raise RunDirError(f"{path}:{i}: not a saved trajectory (schema {SCHEMA_VERSION}, with id and task)")
        total += 1
        if limit is None or len(out) < limit:
            correct = correctness[d["id"]] if correctness and d["id"] in correctness else recorded_correct(d)
            out.append(Episode(d, path, i, correct, step_of(path)))
    return out, total


# ---- drawing ---------------------------------------------------------------------------------------------------

def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return esc(v)


def verdict(correct: bool | None) -> str:
    if correct is None:
        return '<span class="unknown">? unknown</span>'
    return '<span class="yes">&#10003; correct</span>' if correct else '<span class="no">&#10007; wrong</span>'


def highlight(code: str) -> str:
    """Python code as highlighted HTML (Pygments, CSS classes under `.hl`), or escaped text without Pygments."""
    try:
        from pygments import highlight as pyg
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments comes with rich, a dependency
        return f'<pre class="code">{esc(code)}</pre>'
    return pyg(code, PythonLexer(), HtmlFormatter(cssclass="hl code"))


def highlight_css() -> str:
    try:
        from pygments.formatters import HtmlFormatter
    except ImportError:  # pragma: no cover
        return ""
    return HtmlFormatter().get_style_defs(".hl")


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except OSError:
        return None


def input_figure(ep: Episode, index: int, ref: str, src: ImageSrc) -> str:
    """Input image `index` as SVG with the evidence boxes (dashed green) and the region each shown image came from
    (one colour per step, labelled step.output)."""
    path = ep.image_path(ref)
    size = _image_size(path)
    if size is None:
        return f'<figure><pre class="err">missing image {esc(path)}</pre></figure>'
    w, h = size
    shown_w = max(240, min(w, 420))  # small inputs are enlarged so that boxes are visible
    unit = w / shown_w  # one screen pixel in image pixels
    shapes = []
    for ev in ep.task.get("evidence") or []:
        if int(ev.get("image", 0)) == index:
            x1, y1, x2, y2 = ev["box"]
            shapes.append(f'<rect class="evidence" x="{x1}" y="{y1}" width="{x2 - x1}" height="{y2 - y1}" fill="none" '
                          f'stroke="#1a7f37" stroke-width="3" stroke-dasharray="6 3" '
                          f'vector-effect="non-scaling-stroke">'
                          f'<title>evidence{(": " + esc(ev.get("label"))) if ev.get("label") else ""}</title></rect>')
    for s in ep.data.get("steps") or []:
        for j, im in enumerate((s.get("result") or {}).get("images") or []):
            reg = im.get("region")
            if not reg or int(reg["input_index"]) != index:
                continue
            x1, y1, x2, y2 = reg["box"]
            c = STEP_COLOURS[s["index"] % len(STEP_COLOURS)]
            label_y = y1 - 3 * unit if y1 > 14 * unit else y2 + 12 * unit  # above the box, or below at the top edge
            shapes.append(f'<rect class="crop" x="{x1}" y="{y1}" width="{x2 - x1}" height="{y2 - y1}" fill="none" '
                          f'stroke="{c}" stroke-width="2" vector-effect="non-scaling-stroke"><title>step {s["index"]} '
                          f'output {j}: {esc(" > ".join(reg.get("ops") or []))}</title></rect>'
                          f'<text x="{x1}" y="{label_y}" fill="{c}" stroke="#fff" '
                          f'stroke-width="{0.6 * unit}" paint-order="stroke" font-weight="bold" '
                          f'font-size="{12 * unit}">{s["index"]}.{j}</text>')
    return (f'<figure><svg class="im" viewBox="0 0 {w} {h}" width="{shown_w}" height="{round(h / unit)}" '
            f'xmlns="http://www.w3.org/2000/svg"><image href="{esc(src(path))}" width="{w}" height="{h}"/>'
            f'{"".join(shapes)}</svg><figcaption>input {index}: {w}x{h}; green dashed: evidence; coloured: '
            f'regions shown by steps</figcaption></figure>')


def _step_reward(ep: Episode, k: int) -> str:
    r = ep.data.get("reward") or {}
    steps = r.get("steps") or []
    if k >= len(steps):
        return ""
    parts = []
    for key, c in (r.get("components") or {}).items():
        if c.get("scope") == "step" and c.get("steps") is not None and k < len(c["steps"]):
            parts.append(f"{esc(key)} {fmt(c['steps'][k])}")
    return (f'<div class="step-reward">step reward <b>{fmt(steps[k])}</b>'
            + (f" ({', '.join(parts)})" if parts else "") + "</div>")


def step_html(ep: Episode, step: dict[str, Any], src: ImageSrc) -> str:
    """A code step's sandbox result: status, time, ops, stdout, error, output images, step reward."""
    res = step.get("result")
    if res is None:
        return f'<div class="result"><span class="badge status-error">not run: {esc(step.get("skipped"))}</span></div>'
    status = res.get("status", "?")
    ops = sorted({o["op"] for o in res.get("ops") or []})
    out = [f'<div class="result"><span class="badge status-{esc(status)}">{esc(status)}</span> '
           f'{1000 * float(res.get("duration_s", 0.0)):.0f} ms; ops: {esc(", ".join(ops) or "none traced")}']
    if res.get("stdout"):
        out.append(f'<pre class="stdout">{esc(res["stdout"])}</pre>')
    if res.get("value_repr"):
        out.append(f'<pre class="value">{esc(res["value_repr"])}</pre>')
    err = res.get("error")
    if err:
        out.append(f'<pre class="err">{esc(err.get("type"))}: {esc(err.get("message"))}'
                   + (f'\n{esc(err.get("traceback"))}' if err.get("traceback") else "") + "</pre>")
    if res.get("stderr"):
        out.append(f'<pre class="err">{esc(res["stderr"])}</pre>')
    for note in res.get("notes") or []:
        out.append(f'<div class="unknown">note: {esc(note)}</div>')
    figs = []
    for j, im in enumerate(res.get("images") or []):
        reg = im.get("region")
        where = (f"from input {reg['input_index']} box [{', '.join(f'{v:.0f}' for v in reg['box'])}] via "
                 f"{' > '.join(reg.get('ops') or []) or 'no op'}") if reg else "untraced"
        w, h = im.get("size") or ["?", "?"]
        figs.append(f'<figure><img class="out" src="{esc(src(ep.image_path(im["image"])))}" alt="step '
                    f'{step["index"]} output {j}"><figcaption>{step["index"]}.{j}: {w}x{h} via {esc(im.get("source"))};'
                    f' {esc(where)}</figcaption></figure>')
    if figs:
        out.append(f'<div class="images">{"".join(figs)}</div>')
    out.append(_step_reward(ep, int(step["index"])))
    return "".join(out) + "</div>"


def _assistant_text(turn: dict[str, Any]) -> str:
    text, code = turn.get("text") or "", turn.get("code")
    if code and code in text:
        before, after = text.split(code, 1)
        return f'<pre class="say">{esc(before)}</pre>{highlight(code)}<pre class="say">{esc(after)}</pre>'
    body = f'<pre class="say">{esc(text)}</pre>'
    return body + (highlight(code) if code else "")


def reward_table(ep: Episode) -> str:
    """The episode's reward breakdown: per component scope, weight, value, per-step values, status, contribution."""
    r = ep.data.get("reward")
    if not r:
        return '<div class="unknown">not scored (no reward breakdown recorded)</div>'
    rows = []
    for key, c in (r.get("components") or {}).items():
        steps = c.get("steps")
        rows.append(f"<tr><td>{esc(key)}</td><td>{esc(c.get('scope'))}</td><td class=num>{fmt(c.get('weight'))}</td>"
                    f"<td class=num>{fmt(c.get('value'))}</td>"
                    f"<td>{esc(', '.join(fmt(v) for v in steps)) if steps is not None else ''}</td>"
                    f"<td>{esc(c.get('status'))}{(': ' + esc(c.get('error'))) if c.get('error') else ''}</td>"
                    f"<td class=num>{fmt(c.get('contribution'))}</td></tr>")
    steps = ", ".join(fmt(v) for v in r.get("steps") or [])
    return (f"<table class=reward><tr><th>component</th><th>scope</th><th>weight</th><th>value</th><th>per step</th>"
            f"<th>status</th><th>contribution</th></tr>{''.join(rows)}"
            f"<tr><th colspan=6>total = episode {fmt(r.get('episode'))} + steps [{esc(steps)}]</th>"
            f"<th class=num>{fmt(r.get('total'))}</th></tr></table>")


def episode_html(ep: Episode, anchor: str, src: ImageSrc) -> str:
    """One episode as a filterable `<section class="ep">` (see `train.report.assets` for the data attributes)."""
    d, task = ep.data, ep.task
    where = f"{ep.file.name}:{ep.line}" + (f", RL step {ep.rl_step}" if ep.rl_step is not None else "")
    head = (f'<h3>{esc(ep.id)} &mdash; {verdict(ep.correct)} &mdash; {esc(ep.finish)} &mdash; reward '
            f'{fmt(ep.reward_total)} &mdash; {len(d.get("steps") or [])} code step(s) '
            f'<span class="unknown">({esc(where)})</span></h3>')
    req = ", ".join(task.get("required_ops") or [])
    info = (f'<div class="task"><b>question</b><pre>{esc(task["question"])}</pre><b>ground truth</b> '
            f'{esc(answer_text(task.get("answer")))} ({esc(task.get("answer_type"))}) &nbsp; '  # type: ignore[arg-type]
            f'<b>answer</b> {esc(d.get("answer"))}'
            + (f" &nbsp; <b>required ops</b> {esc(req)}" if req else "")
            + (f'<pre class="err">{esc(d.get("error"))}</pre>' if d.get("error") else "") + "</div>")
    inputs = [input_figure(ep, i, im["image"], src) for i, im in enumerate(d.get("images") or [])
              if im.get("origin") == "input"]
    steps_by_turn = {s["assistant_turn"]: s for s in d.get("steps") or []}
    turns = []
    for i, t in enumerate(d.get("turns") or []):
        if t["role"] == "assistant":
            events = f' <span class="unknown">events: {esc(", ".join(t["events"]))}</span>' if t.get("events") else ""
            body = _assistant_text(t)
            if i in steps_by_turn:
                body += step_html(ep, steps_by_turn[i], src)
            turns.append(f'<div class="turn assistant"><div class="role">assistant, step {t["step"]}{events}</div>'
                         f'{body}</div>')
        else:
            turns.append(f'<div class="turn observation"><details><summary class="role">observation, step '
                         f'{t["step"]} (as the model saw it)</summary><pre>{esc(t.get("text"))}</pre></details></div>')
    return (f'<section class="ep" id="{anchor}" {data_attrs(ep)}>{head}{info}<div class="images">{"".join(inputs)}'
            f'</div>{"".join(turns)}<details open><summary>reward breakdown</summary>{reward_table(ep)}</details>'
            '</section>')


def _cv(correct: bool | None) -> str:
    return "unknown" if correct is None else ("yes" if correct else "no")


def data_attrs(ep: Episode) -> str:
    """The filter attributes shared by an episode's section and its row in the table."""
    search = f"{ep.id} {ep.task.get('id')} {ep.task['question'][:200]}".lower()
    return (f'data-correct="{_cv(ep.correct)}" data-finish="{esc(ep.finish)}" data-type="{esc(ep.task_type)}" '
            f'data-reward="{"" if ep.reward_total is None else ep.reward_total}" data-search="{esc(search)}"')
