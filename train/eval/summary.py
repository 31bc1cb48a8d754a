"""Evaluation tables from sample records: accuracy (overall, per source / category / transform), tool use,
the CodeV faithfulness 2x2 table, reward and timing; and their text form.

Accuracy is the share of correct answers among the samples that were scored; where a benchmark's rule gives partial
credit (ChartQAPro), `mean_score` is its published figure, the mean of the samples' scores. Samples whose episode failed
(engine or sandbox error) are not answers: they are counted under `failed` and left out of every accuracy, and so
are samples whose correctness could not be decided (a failed answer judge, `unscored`); neither is a silent 0.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from rewards.faithfulness import FaithfulnessReport
from train.eval.records import record_faithfulness

GROUP_DIMENSIONS = ("source", "category", "transform")


def _acc(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in records if not r.get("failed") and r.get("correct") is not None]
    n_ok = sum(bool(r["correct"]) for r in scored)
    out = {"n": len(scored), "correct": n_ok, "accuracy": round(n_ok / len(scored), 6) if scored else None}
    scores = [float(r["score"]) for r in scored if r.get("score") is not None]
    if any(0.0 < s < 1.0 for s in scores):  # partial credit (e.g. ChartQAPro): its benchmark figure is the mean score
        out["mean_score"] = round(sum(scores) / len(scores), 6)
    return out


def _mean(xs: Sequence[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None


def accuracy_table(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall accuracy and, for each dimension that any record has, accuracy per value."""
    out: dict[str, Any] = {"overall": _acc(records)}
    for dim in GROUP_DIMENSIONS:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            if r.get(dim) is not None:
                groups[str(r[dim])].append(r)
        if groups and not (dim == "source" and len(groups) == 1):
            out[f"by_{dim}"] = {k: _acc(v) for k, v in sorted(groups.items())}
    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        if not r.get("failed") and r.get("correct") is not None:
            by_task[r["task_id"]].append(bool(r["correct"]))
    if any(len(v) > 1 for v in by_task.values()):
        # several samples per task: also the share of tasks with at least one correct sample (pass@k)
        out["any_correct_per_task"] = {"n": len(by_task), "correct": sum(any(v) for v in by_task.values()),
                                       "accuracy": round(sum(any(v) for v in by_task.values()) / len(by_task), 6)}
    return out


def tool_table(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Calls per sample, share of samples with any call and with at least one block that ran without error
    (`executing_code_rate`), share that gave an answer in the protocol's format (`answered_rate`), code error rate
    over the blocks that ran, operations used (traced, or parsed from the code where there is no trace), finish
    reasons."""
    done = [r for r in records if not r.get("failed")]
    statuses = Counter(s for r in done for s in r["step_status"])
    ran = sum(v for k, v in statuses.items() if not k.startswith("not_run"))
    ops_samples = Counter(op for r in done for op in r["ops"])
    return {
        "samples": len(done),
        "calls_per_sample": _mean([r["steps"] for r in done]),
        "any_call_rate": _mean([float(r["steps"] > 0) for r in done]),
        "executing_code_rate": _mean([float("ok" in r["step_status"]) for r in done]),
        "answered_rate": _mean([float(r["finish_reason"] == "answered") for r in done]),
        "code_error_rate": round((ran - statuses.get("ok", 0)) / ran, 6) if ran else None,
        "code_blocks": sum(statuses.values()),
        "code_block_status": dict(sorted(statuses.items())),
        "ops_share_of_samples": {k: round(v / len(done), 6) for k, v in sorted(ops_samples.items())} if done else {},
        "images_shown_per_sample": _mean([r["images_shown"] for r in done]),
        "turns_per_sample": _mean([r["turns"] for r in done]),
        "finish_reasons": dict(sorted(Counter(str(r["finish_reason"]) for r in records).items())),
    }


def faithfulness_report(records: Sequence[dict[str, Any]]) -> FaithfulnessReport:
    """The CodeV faithfulness report rebuilt from the records' labels (rule in `rewards.faithfulness`)."""
    samples = [s for r in records if not r.get("failed") and (s := record_faithfulness(r)) is not None]
    return FaithfulnessReport(samples)


def summarize(records: Sequence[dict[str, Any]], *, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary JSON of an evaluation (see the module docstring); `info` (model, data, config) is kept as is."""
    done = [r for r in records if not r.get("failed")]
    fr = faithfulness_report(records)
    rewards = [r["reward"] for r in done if r.get("reward") is not None]
    comp_keys: list[str] = []
    for r in done:
        comp_keys += [k for k in r.get("reward_components") or {} if k not in comp_keys]
    components = {k: _mean([float(v) for r in done if (v := (r.get("reward_components") or {}).get(k)) is not None])
                  for k in comp_keys}
    timing_keys = ("wall_s", "generate_s", "sandbox_s")
    return {
        **(info or {}),
        "samples": len(records),
        "failed": len(records) - len(done),
        "unscored": sum(r.get("correct") is None for r in done),
        "accuracy": accuracy_table(records),
        "tools": tool_table(records),
        "faithfulness": {"table": fr.table(), **{k.removeprefix("faithfulness/"): v for k, v in fr.to_metrics().items()
                                                if not k.endswith(tuple(fr.table()))}},
        "reward": {"total_mean": _mean(rewards), "components_mean": components} if rewards else None,
        "response": {"sampled_tokens_mean": _mean([r["sampled_tokens"] for r in done]),
                     "chars_mean": _mean([r["response_chars"] for r in done])},
        "timing": {f"{k}_mean": _mean([r["timing"][k] for r in done if k in r.get("timing", {})]) for k in timing_keys},
        "failures": [{"key": r["key"], "finish_reason": r["finish_reason"], "error": r.get("error")}
                     for r in records if r.get("failed")][:20],
    }


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def format_summary(s: dict[str, Any], records: Sequence[dict[str, Any]] | None = None) -> str:
    """The summary as the text `codevl eval` prints."""
    a = s["accuracy"]
    lines = [f"model {s.get('model', '?')} on {s.get('dataset', '?')}: {s['samples']} samples"
             f" ({s['failed']} failed, {s['unscored']} unscored)",
             f"accuracy {_pct(a['overall']['accuracy'])} ({a['overall']['correct']}/{a['overall']['n']})"]
    if "any_correct_per_task" in a:
        t = a["any_correct_per_task"]
        lines.append(f"tasks with any correct sample {_pct(t['accuracy'])} ({t['correct']}/{t['n']})")
    for dim in ("source", "category", "transform"):
        if f"by_{dim}" in a:
            lines.append(f"by {dim}: " + ", ".join(f"{k} {_pct(v['accuracy'])} ({v['correct']}/{v['n']})"
                                                 for k, v in a[f"by_{dim}"].items()))
    t = s["tools"]
    lines.append(f"answered {_pct(t['answered_rate'])}; code that executes {_pct(t['executing_code_rate'])} of samples")
    lines.append(f"tools: {t['calls_per_sample']} calls/sample, any call {_pct(t['any_call_rate'])}, code errors "
                 f"{_pct(t['code_error_rate'])} of {t['code_blocks']} blocks; ops "
                 + (", ".join(f"{k} {_pct(v)}" for k, v in t["ops_share_of_samples"].items()) or "none"))
    lines.append("finish: " + ", ".join(f"{k} {v}" for k, v in t["finish_reasons"].items()))
    if records is not None:
        fr = faithfulness_report(records)
        if fr.counted():
            lines.append("faithfulness (CodeV protocol; samples with evidence boxes):")
            lines += ["  " + x for x in fr.format_table().splitlines()]
        else:
            lines.append("faithfulness: n/a (no sample with evidence boxes and a decided answer)")
    if s.get("reward"):
        lines.append(f"reward: total mean {s['reward']['total_mean']}")
    tm = s["timing"]
    lines.append(f"time per episode (episodes run concurrently): {tm['wall_s_mean']} s (generation "
                 f"{tm['generate_s_mean']} s, sandbox {tm['sandbox_s_mean']} s)")
    inv = s.get("this_invocation")
    if inv:
        lines.append(f"this run: {inv['samples_run']} samples in {inv['seconds']:.1f} s")
    if s["failed"]:
        lines.append(f"{s['failed']} sample(s) failed (engine or sandbox errors; rerun the command to retry them), "
                     f"e.g. {s['failures'][0]['key']}: {s['failures'][0]['error']}")
    return "\n".join(lines)
