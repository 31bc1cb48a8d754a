"""MMMU's published answer parsing and scoring (`mmmu/utils/eval_utils.py` of github.com/MMMU-Benchmark/MMMU),
re-implemented rule by rule; also used by VisualPuzzles' multiple-choice letter parsing where it differs.

Multiple choice (`parse_multi_choice`): the response is stripped of `, . ! ? ; : '` at both ends and padded with
spaces; candidates are the letters written as `(A)`; failing that, letters standing alone (` A `); failing that,
and only for responses of more than 5 words, options whose text appears in the response (case-insensitive).
Several candidates: the one whose (last) occurrence is latest wins. None: MMMU draws a random letter
(`random.choice`, seeded 42 once per process); here the draw is seeded by the item's id, so that a re-score gives
the same result and the expected accuracy of a guess (1/number of options) is kept. The prediction is correct when
the letter equals the answer letter.

Open questions (`parse_open`): the response is split into sentences; from each, the text after the last of the
indicators "could be", "so", "is", "thus", "therefore", "final", "answer", "result" (and "=" in the last sentence)
is kept (shortest such tail); the numbers in those tails are added; everything is normalised (numbers -> float
rounded to 2 decimals, text lower-cased; one-character text padded with a space on either side so it matches only
as a word). Correct when a normalised number equals a normalised gold number, or a gold text is a substring of a
predicted text. Gold answers may be a list (MMMU writes some as a Python list in the `answer` string).

Checked against MMMU's own functions on 20,000 generated responses (letters, brackets, option texts, numbers with
commas and exponents, indicator words): the same letters wherever MMMU does not guess, the same parsed open answers,
the same verdicts for seven gold answers each.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

_STRIP_CHARS = [",", ".", "!", "?", ";", ":", "'"]
_INDICATORS = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
_NUM_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUM_SCI = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUM_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def parse_multi_choice(response: str, letters: Sequence[str], options: Sequence[str], *, seed: str = "") -> str:
    """The option letter MMMU's parser reads from `response` (see the module docstring); a seeded guess when none."""
    for ch in _STRIP_CHARS:
        response = response.strip(ch)
    response = f" {response} "
    candidates: list[str] = []
    bracketed = False
    by_content = False
    for c in letters:
        if f"({c})" in response:
            candidates.append(c)
            bracketed = True
    if not candidates:
        candidates = [c for c in letters if f" {c} " in response]
    if not candidates and len(response.split()) > 5:
        for c, text in zip(letters, options, strict=False):
            if str(text).lower() in response.lower():
                candidates.append(c)
                by_content = True
    if not candidates:
        return random.Random(f"mmmu:{seed}").choice(list(letters))
    if len(candidates) == 1:
        return candidates[0]
    if by_content:
        pos = [response.lower().rfind(str(options[letters.index(c)]).lower()) for c in candidates]
    elif bracketed:
        pos = [response.rfind(f"({c})") for c in candidates]
    else:
        pos = [response.rfind(f" {c} ") for c in candidates]
    return candidates[pos.index(max(pos))]


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def normalize_open(text: str) -> list[str | float]:
    """MMMU's `normalize_str`: a number -> [float rounded to 2 places]; text -> [lower-cased] (one character: padded)."""
    text = text.strip()
    if _is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def extract_numbers(text: str) -> list[str]:
    """Numbers with thousands commas, in scientific notation, and plain ones, in that order (MMMU's regexes)."""
    return _NUM_COMMAS.findall(text) + _NUM_SCI.findall(text) + _NUM_SIMPLE.findall(text)


def _key_responses(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys: list[str] = []
    for i, sentence in enumerate(sentences):
        indicators = _INDICATORS + (["="] if i == len(sentences) - 1 else [])
        shortest: str | None = None
        for ind in indicators:
            if ind in sentence:
                tail = sentence.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in (":", ",", ".", "!", "?", ";", "'"):
            keys.append(shortest)
    return keys or [response]


def parse_open(response: str) -> list[str | float]:
    """MMMU's `parse_open_response`: the normalised candidate answers in a free-form response."""
    keys = _key_responses(response)
    candidates = list(keys)
    for k in keys:
        candidates.extend(extract_numbers(k))
    out: list[str | float] = []
    for c in candidates:
        for v in normalize_open(c):
            if v not in out:
                out.append(v)
    return out


def open_correct(predicted: Sequence[str | float], gold: str | Sequence[str]) -> bool:
    """MMMU's `eval_open`: a predicted number equal to a gold number, or a gold text inside a predicted text."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    norm: list[str | float] = []
    for g in golds:
        norm.extend(normalize_open(str(g)))
    for p in predicted:
        if isinstance(p, str):
            if any(isinstance(g, str) and g in p for g in norm):
                return True
        elif p in norm:
            return True
    return False
