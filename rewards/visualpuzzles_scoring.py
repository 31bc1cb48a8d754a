"""VisualPuzzles' published answer parsing (`lmms-eval/lmms_eval/tasks/VisualPuzzles/utils.py` of
github.com/neulab/VisualPuzzles, `parse_response` + `VisualPuzzles_process_result`), re-implemented rule by rule.

The letter is read from the response by the first of these patterns that yields a letter among A-D, taking its
last match: `Answer: (X)`; `Answer: X` not preceded by "Final "; `Answer: X`; `(X)`; `X)`; `{X}`; `$X$`; ` X.`;
` X` (only for responses of at most 5 characters). Failing that, with option texts: `answer: <option>` (lower
case), then the option whose text occurs last in the response. Failing everything, VisualPuzzles draws a random
letter; here the draw is seeded by the item's id (same result on a re-score, same expected accuracy, 1/4).
Correct when the letter equals the answer, case-insensitively. Checked against the published `parse_response` on
20,000 generated responses, with and without option texts: the same letter wherever it does not guess.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

_PATTERNS = (r"Answer:\s*\(([A-Za-z])\)", r"(?<!Final )Answer:\s*([A-Za-z])", r"Answer:\s*([A-Za-z])",
             r"\s*\(([A-Za-z])\)")
_PADDED = (r"\s*([A-Za-z])\)", r"\s*\{([A-Za-z])\}", r"\s*\$([A-Za-z])\$", r" ([A-Da-d])\.")
LETTERS = ("A", "B", "C", "D")


def _last_valid(pattern: str, text: str, letters: Sequence[str]) -> str | None:
    for m in reversed(re.findall(pattern, text)):
        if m in letters or m.upper() in letters:
            return str(m)
    return None


def parse_visualpuzzles(response: str, options: Sequence[str] | None, *, seed: str = "") -> str:
    """The letter VisualPuzzles' parser reads from `response` (see the module docstring)."""
    for pattern in _PATTERNS:
        if (got := _last_valid(pattern, response, LETTERS)) is not None:
            return got
    response = " " + response.strip()
    for pattern in _PADDED:
        if (got := _last_valid(pattern, response, LETTERS)) is not None:
            return got
    if len(response) <= 5 and (got := _last_valid(r" ([A-Da-d])", response, LETTERS)) is not None:
        return got
    if options is not None:
        lowered = response.lower()
        for letter, text in zip(LETTERS, options, strict=False):
            if f"answer: {text}" in lowered or f"answer:{text}" in lowered:
                return letter
        best, best_at = None, -1
        for letter, text in zip(LETTERS, options, strict=False):
            at = response.rfind(text)
            if at > best_at:
                best, best_at = letter, at
        if best:
            return best
    return random.Random(f"visualpuzzles:{seed}").choice(LETTERS)


def visualpuzzles_correct(response: str, answer: str, options: Sequence[str] | None, *, seed: str = "") -> bool:
    """VisualPuzzles' exact match of the parsed letter with the answer, case-insensitively."""
    return parse_visualpuzzles(response.strip(), options, seed=seed).lower() == answer.strip().lower()
