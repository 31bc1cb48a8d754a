"""Benchmarks' own published scoring rules, for tasks whose loader asks for them (`Task.metadata["scoring"]`).

A benchmark number is only comparable with the published ones when it is computed the benchmark's way, quirks
included, so these rules are not folded into the generic matcher (`rewards.answers`):

- `ocrbench` (OCRBench's evaluation script, also VLMEvalKit's): correct when any acceptable answer is a substring
  of the prediction, both lowercased, stripped and with newlines turned into spaces; for HME100k formulas
  (`metadata["ignore_spaces"]`) all spaces are removed instead and case is kept;
- `mathvista` (MathVista's `calculate_score.py`): the prediction is normalised to the answer's type and compared
  with the answer as a string: multiple choice maps an option letter (or "(B)") to that option's text, otherwise the
  most similar option by edit distance, so duplicate option texts count as the same answer; integers are truncated
  (`str(int(float(x)))`), floats rounded to the item's `precision`, lists and text compared as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

SCORINGS: tuple[str, ...] = ("ocrbench", "mathvista")


def ocrbench_correct(predicted: str, answers: Sequence[str], *, ignore_spaces: bool = False) -> bool:
    """OCRBench's rule (see the module docstring)."""
    if ignore_spaces:
        p = predicted.strip().replace("\n", " ").replace(" ", "")
        return any(a.strip().replace("\n", " ").replace(" ", "") in p for a in answers)
    p = predicted.lower().strip().replace("\n", " ")
    return any(a.lower().strip().replace("\n", " ") in p for a in answers)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def mathvista_normalize(extraction: Any, choices: Sequence[str] | None, question_type: str, answer_type: str,
                        precision: int | None) -> str | None:
    """MathVista's `normalize_extracted_answer`: the prediction as the string the answer is compared with."""
    if question_type == "multi_choice":
        text = extraction.strip() if isinstance(extraction, str) else str(extraction)
        letters = re.findall(r"\(([a-zA-Z])\)", text)
        if letters:
            text = letters[0].upper()
        options = [chr(ord("A") + i) for i in range(len(choices or []))]
        if text in options:
            return str((choices or [])[options.index(text)])
        if not choices:
            return text
        distances = [edit_distance(text, str(c)) for c in choices]
        return str(choices[distances.index(min(distances))])
    if answer_type == "integer":
        try:
            return str(int(float(extraction)))
        except (TypeError, ValueError):
            return None
    if answer_type == "float":
        try:
            return str(round(float(extraction), int(precision if precision is not None else 0)))
        except (TypeError, ValueError):
            return None
    return None if extraction is None else str(extraction)


def mathvista_correct(predicted: str, meta: dict[str, Any], choices: Sequence[str] | None) -> bool:
    """MathVista's rule: normalised prediction == the published answer string (`meta["answer_text"]`)."""
    precision = meta.get("precision")
    norm = mathvista_normalize(predicted, choices, str(meta.get("question_type")),
                               str(meta.get("mathvista_answer_type")),
                               None if precision in (None, "") else int(float(precision)))
    return norm is not None and norm == str(meta["answer_text"])
