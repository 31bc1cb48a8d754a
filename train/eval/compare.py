"""`codevl eval compare A B`: two evaluation runs side by side, and which samples changed.

Reads each run's `summary.json` and `samples.jsonl`. Rows: accuracy overall and per source / category / transform,
tool use, faithfulness, reward, time per sample; then, over the samples both runs have (same task id and sample
index), how many went wrong -> right and right -> wrong, with examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from train.eval.engines import EvalSetupError
from train.eval.records import read_records


def load_run(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, records) of an evaluation run directory; a clear error when it is not one."""
    p = Path(path)
    if not p.is_dir():
        raise EvalSetupError(f"{p} is not a directory (give two evaluation run directories)")
    s = p / "summary.json"
    if not s.is_file():
        raise EvalSetupError(f"{p} has no summary.json: not an evaluation run (made by `codevl eval`)")
    try:
        summary = json.loads(s.read_text())
    except ValueError as exc:
        raise EvalSetupError(f"{s} is not valid JSON: {exc}") from None
    return summary, read_records(p / "samples.jsonl")


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _delta(a: Any, b: Any, pct: bool) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return ""
    d = b - a
    return f"{100 * d:+.1f}" if pct else f"{d:+.3f}"


def comparison_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, bool]]:
    """(label, value in A, value in B, is a share) for every row both summaries can fill."""
    rows: list[tuple[str, Any, Any, bool]] = [
        ("samples", a["samples"], b["samples"], False),
        ("failed", a["failed"], b["failed"], False),
        ("accuracy", a["accuracy"]["overall"]["accuracy"], b["accuracy"]["overall"]["accuracy"], True),
    ]
    for dim in ("source", "category", "transform"):
        ga, gb = a["accuracy"].get(f"by_{dim}", {}), b["accuracy"].get(f"by_{dim}", {})
        for key in sorted(set(ga) | set(gb)):
            rows.append((f"  {dim} {key}", (ga.get(key) or {}).get("accuracy"), (gb.get(key) or {}).get("accuracy"),
                         True))
    ta, tb = a["tools"], b["tools"]
    rows += [("tool calls / sample", ta["calls_per_sample"], tb["calls_per_sample"], False),
             ("any tool call", ta["any_call_rate"], tb["any_call_rate"], True),
             ("code that executes", ta["executing_code_rate"], tb["executing_code_rate"], True),
             ("answered", ta["answered_rate"], tb["answered_rate"], True),
             ("code error rate", ta["code_error_rate"], tb["code_error_rate"], True)]
    fa, fb = a.get("faithfulness", {}), b.get("faithfulness", {})
    for key in ("any_faithful_rate", "p_correct_given_faithful", "p_faithful_given_correct"):
        if key in fa or key in fb:
            rows.append((f"faithfulness {key}", fa.get(key), fb.get(key), True))
    ra, rb = (a.get("reward") or {}).get("total_mean"), (b.get("reward") or {}).get("total_mean")
    if ra is not None or rb is not None:
        rows.append(("reward total mean", ra, rb, False))
    rows.append(("seconds / sample", a["timing"]["wall_s_mean"], b["timing"]["wall_s_mean"], False))
    return rows


def changed_samples(ra: list[dict[str, Any]], rb: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Keys of samples scored in both runs that went wrong -> right (`fixed`) and right -> wrong (`broken`)."""
    a = {r["key"]: r for r in ra if not r.get("failed") and r.get("correct") is not None}
    b = {r["key"]: r for r in rb if not r.get("failed") and r.get("correct") is not None}
    common = [k for k in a if k in b]
    return {"common": common,
            "fixed": [k for k in common if not a[k]["correct"] and b[k]["correct"]],
            "broken": [k for k in common if a[k]["correct"] and not b[k]["correct"]]}


def format_comparison(path_a: str | Path, path_b: str | Path) -> str:
    """The side-by-side table as text."""
    sa, ra = load_run(path_a)
    sb, rb = load_run(path_b)
    rows = comparison_rows(sa, sb)
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"A: {path_a}  ({sa.get('model')} on {sa.get('dataset')})",
             f"B: {path_b}  ({sb.get('model')} on {sb.get('dataset')})",
             f"{'':<{width}}{'A':>10}{'B':>10}{'B-A':>9}"]
    for label, va, vb, pct in rows:
        fmt = _pct if pct else _num
        lines.append(f"{label:<{width}}{fmt(va):>10}{fmt(vb):>10}{_delta(va, vb, pct):>9}")
    ch = changed_samples(ra, rb)
    lines.append(f"samples scored in both: {len(ch['common'])}; wrong -> right {len(ch['fixed'])}, "
                 f"right -> wrong {len(ch['broken'])}")
    for name in ("fixed", "broken"):
        if ch[name]:
            lines.append(f"  {name}: " + ", ".join(ch[name][:10]) + (" ..." if len(ch[name]) > 10 else ""))
    if sa.get("dataset") != sb.get("dataset") or sa.get("tasks") != sb.get("tasks"):
        lines.append("note: the runs are on different data; compare per-sample changes with care")
    return "\n".join(lines)
