"""ChartQAPro's published scoring (`evaluate_predictions.py` of github.com/vis-nlp/ChartQAPro, also VLMEvalKit's
`vlmeval/dataset/utils/chartqapro.py`), re-implemented rule by rule; a score in [0, 1] per item, averaged.

- The gold answer is the item's last `Answer` entry; gold and prediction are stripped of "." and newlines at the
  ends. A text written as a Python list (`['a', 'b']`, or `[a, b]`, which the script quotes first) is a list of
  answers; otherwise a single one. The score is the mean over positions of the longer list; a position missing on
  either side scores 0.
- Per position, with the item's `Year` flag for it ("YES": the answer is a year; the flags repeat when there are
  fewer flags than answers; conversational items use their last flag only): a year is compared exactly (stripped,
  case-insensitive); otherwise two numbers (a trailing `%` ignored) score 1 when within 5% of the gold (relative;
  a gold of 0 needs exactly 0), and text scores ANLS against the gold (lower case, spaces collapsed:
  1 - normalised edit distance, or 0 when that distance is 0.5 or more).
- As published, multiple-choice and fact-checking items go through the same rule: the script computes an
  "exact match" flag for them but never passes it on, and we keep its behaviour so that numbers compare.

Checked against `evaluate_predictions_chartqapro` (with the `anls` package's rule) on 200 gold/prediction pairs
covering numbers, percentages, years, quoted and unquoted lists, letters and conversations: identical scores.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from rewards.benchmark_scoring import edit_distance

MAX_RELATIVE_CHANGE = 0.05
ANLS_THRESHOLD = 0.5


def _fix_list_format(item: str) -> str | list[object]:
    """A list written without quotes (`[a, b]`) becomes a list; anything else stays as it is."""
    m = re.match(r"^\[(.*)\]$", item.strip())
    if not m:
        return item
    quoted = re.sub(r"(?<!['\w])(\w[^,]*?)(?!['\w])", r"'\1'", m.group(1))
    try:
        value = ast.literal_eval(f"[{quoted}]")
    except (SyntaxError, ValueError):
        return item
    return value if isinstance(value, list) else item


def _as_list(text: str) -> list[str] | None:
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return [str(x).strip(" '") for x in value] if isinstance(value, list) else None


def _to_float(text: str) -> float | None:
    try:
        return float(text.strip().strip("%"))
    except ValueError:
        return None


def anls(prediction: str, gold: str, threshold: float = ANLS_THRESHOLD) -> float:
    """ANLS of one prediction against one gold answer (the `anls` package's rule)."""
    p = " ".join(prediction.strip().lower().split())
    g = " ".join(gold.strip().lower().split())
    longest = max(len(p), len(g))
    dist = 0.0 if longest == 0 else edit_distance(p, g) / longest
    return 1.0 - dist if dist < threshold else 0.0


def _single(target: str, prediction: str) -> float:
    t = target.strip().strip("%").strip()
    p = prediction.strip().strip("%").strip()
    tf, pf = _to_float(t), _to_float(p)
    if tf is not None and pf is not None:
        if tf == 0.0:
            return 1.0 if pf == 0.0 else 0.0
        return 1.0 if abs(pf - tf) / abs(tf) <= MAX_RELATIVE_CHANGE else 0.0
    return anls(p.lower(), t.lower())


def chartqapro_score(prediction: str, answers: Sequence[str], question_type: str, year_flags: Sequence[str]) -> float:
    """ChartQAPro's relaxed correctness of `prediction` for an item (see the module docstring)."""
    target = str(answers[-1]).strip(".").strip("\n")
    pred = prediction.strip(".").strip("\n")
    flags = list(year_flags)
    if question_type == "Conversational":
        flags = flags[-1:]
    t_list = _as_list(str(_fix_list_format(target))) or [target]
    p_list = _as_list(pred) or [pred]
    if len(flags) < len(t_list):
        flags = (flags or ["NO"]) * len(t_list)
    scores = []
    for i in range(max(len(t_list), len(p_list))):
        if i >= len(t_list) or i >= len(p_list):
            scores.append(0.0)
        elif str(flags[i]).upper() == "YES":
            scores.append(1.0 if t_list[i].strip().lower() == p_list[i].strip().lower() else 0.0)
        else:
            scores.append(_single(t_list[i], p_list[i]))
    return sum(scores) / len(scores) if scores else 0.0
