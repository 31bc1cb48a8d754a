"""Final answers: extraction from text, normalisation, and matching against a task's ground truth.

Extraction (`extract_answer`): the content of the first `<answer>...</answer>`, unwrapped from `\\boxed{...}` if
it holds one; without answer tags, the last `\\boxed{...}` in the text (math-grading convention). Trajectories
carry the protocol's extracted answer (`Trajectory.answer`); `clean_answer` still unwraps tags, `\\boxed{}`,
`\\text{}` and `$...$` that a model may have put inside it.

Matching (`match_answer`) by `Task.answer_type`:

- `choice`: the predicted option letter (`B`, `(B)`, `B.`, `B) text`, `Option B`, `answer: b`) or the option's
  text (normalised) must equal the gold letter;
- `number`: the number in the prediction (the whole string, a fraction `a/b` or `\\frac{a}{b}`, thousands
  separators removed, else the last number in it) within `|p - g| <= max(abs_tol, rel_tol * |g|)`;
- `text`: SQuAD-style normalisation (NFKC, lower case, punctuation and the articles a/an/the removed, spaces
  collapsed), then equality (or, with `text_match=contains`, the gold as a whole-word substring); two pure
  numbers compare as numbers, except for answers that are codes (`metadata["exact_text"]`: "0427" is not 427);
- `box`: the first four numbers of the prediction as `(x1, y1, x2, y2)`; IoU with the gold box; score 1 when
  IoU >= `box_iou_threshold` (`box_score=threshold`) or the IoU itself (`box_score=iou`; correct still means
  IoU >= threshold).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from rewards.boxes import Box, iou, is_degenerate
from rewards.params import ComponentParams
from rollout.protocols.base import extract_boxed
from rollout.task import Task


class AnswerMatchParams(ComponentParams):
    """How predictions are compared with the ground truth (see the module docstring)."""

    rel_tol: float = Field(1e-3, ge=0.0, description="relative tolerance for numbers")
    abs_tol: float = Field(1e-6, ge=0.0, description="absolute tolerance for numbers")
    text_match: Literal["exact", "contains"] = "exact"
    box_iou_threshold: float = Field(0.5, gt=0.0, le=1.0)
    box_score: Literal["threshold", "iou"] = "threshold"


@dataclass(frozen=True)
class AnswerMatch:
    """The outcome of matching one prediction: `score` in [0, 1] (the reward), `correct` (for components and
    metrics that need a yes/no), `method` (how it was decided: e.g. `choice_letter`, `number`, `no_answer`)."""

    score: float
    correct: bool
    method: str
    predicted: str | None = None


_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_FRAC = re.compile(r"^\s*\\[dt]?frac\{\s*([^{}]+?)\s*\}\{\s*([^{}]+?)\s*\}\s*$")
_SLASH = re.compile(rf"^\s*({_NUMBER.pattern})\s*/\s*({_NUMBER.pattern})\s*$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CHOICE_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:correct\s+)?(?:final\s+)?(?:answer|option|choice)\s*(?:is)?\s*[:：]?\s*",
                            re.IGNORECASE)


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (balanced braces) in `text`, or None."""
    i = text.rfind("\\boxed{")
    while i >= 0:
        got = extract_boxed(text[i:])
        if got is not None:
            return got
        i = text.rfind("\\boxed{", 0, i)
    return None


def extract_answer(text: str) -> str | None:
    """The final answer in raw model text: first `<answer>` block (unwrapped from `\\boxed{}`), else the last
    `\\boxed{}`; None when there is neither or it is empty."""
    m = _ANSWER_TAG.search(text)
    if m:
        inner = m.group(1)
        boxed = extract_boxed(inner)
        inner = (boxed if boxed is not None else inner).strip()
        return inner or None
    boxed = last_boxed(text)
    return boxed.strip() or None if boxed is not None else None


def clean_answer(answer: str) -> str:
    """Unwrap what a model may leave around an extracted answer: answer tags, `\\boxed{}`, `\\text{}`, `$`."""
    s = answer.strip()
    m = _ANSWER_TAG.search(s)
    if m:
        s = m.group(1).strip()
    boxed = extract_boxed(s)
    if boxed is not None:
        s = boxed
    s = re.sub(r"\\(?:text|textbf|mathrm)\{([^{}]*)\}", r"\1", s)
    return s.strip().strip("$").strip()


def normalize_text(text: str) -> str:
    """SQuAD-style normalisation: NFKC, lower case, punctuation -> space, articles removed (unless the text is
    nothing but articles), spaces collapsed."""
    s = unicodedata.normalize("NFKC", text).lower()
    s = "".join(" " if unicodedata.category(c).startswith("P") or c in "$^`|~<>=+" else c for c in s)
    words = s.split()
    kept = " ".join(_ARTICLES.sub(" ", s).split())
    # An answer that is only an article ("A" as a letter or glyph, "the") keeps it: removing it would leave nothing
    # to compare, and a correct answer would score 0.
    return kept if kept else " ".join(words)


def _to_float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def parse_number(text: str, *, whole: bool = False) -> float | None:
    """The number a prediction states (see the module docstring); `whole=True` accepts only a string that is
    entirely one number (or fraction)."""
    s = clean_answer(text).replace("\u2212", "-").replace("\\%", "%").replace("\\,", "")
    s = _THOUSANDS.sub("", s).strip().rstrip("%").strip()
    if (v := _to_float(s)) is not None:
        return v
    for pattern in (_FRAC, _SLASH):
        m = pattern.match(s)
        if m:
            a, b = _to_float(m.group(1)), _to_float(m.group(2))
            if a is not None and b not in (None, 0.0):
                return a / b
    if whole:
        return None
    found = _NUMBER.findall(s)
    return float(found[-1]) if found else None


def parse_choice(text: str, choices: list[str] | None = None) -> str | None:
    """The option letter a prediction names (upper case), or None. A letter (`B`, `(B)`, `B. text`) takes
    precedence; otherwise, with `choices`, a prediction equal to an option's text (normalised) names that option.
    Letters beyond the options are rejected."""
    s = clean_answer(text)
    letter = _choice_letter(s, choices)
    if letter is not None:  # a letter names its option even when it is also some option's text
        return letter
    norm = normalize_text(s)
    if choices:
        for k, option in enumerate(choices):
            if norm and norm == normalize_text(option):
                return chr(ord("A") + k)
    return None


def _choice_letter(s: str, choices: list[str] | None) -> str | None:
    s = _CHOICE_PREFIX.sub("", s).strip()
    letter = None
    for pattern in (r"^[(\[]?([A-Za-z])[)\]]?[.:]?$",  # B  (B)  [b]  B.  B:
                    r"^[(\[]([A-Za-z])[)\]]",  # (B) text
                    r"^([A-Za-z])[.:)]\s+\S"):  # B. text   B) text   B: text
        m = re.match(pattern, s)
        if m:
            letter = m.group(1).upper()
            break
    if letter is None:
        return None
    if choices is not None and ord(letter) - ord("A") >= len(choices):
        return None
    return letter


def parse_box(text: str) -> Box | None:
    """The first four numbers of a prediction as a box, or None (fewer than four numbers, or degenerate)."""
    nums = [float(v) for v in _NUMBER.findall(clean_answer(text).replace("\u2212", "-"))]
    if len(nums) < 4:
        return None
    box = (nums[0], nums[1], nums[2], nums[3])
    return None if is_degenerate(box) else box


def numbers_close(pred: float, gold: float, params: AnswerMatchParams) -> bool:
    """|pred - gold| <= max(abs_tol, rel_tol * |gold|)."""
    return abs(pred - gold) <= max(params.abs_tol, params.rel_tol * abs(gold))


def match_answer(predicted: str | None, task: Task, params: AnswerMatchParams | None = None) -> AnswerMatch:
    """Compare a prediction with `task`'s answer by its answer type (rules only; a judge is optional, see
    `rewards.components.accuracy`)."""
    params = params or AnswerMatchParams()
    if predicted is None or not clean_answer(predicted):
        return AnswerMatch(0.0, False, "no_answer", predicted)
    scoring = (task.metadata or {}).get("scoring")
    if scoring is not None:
        return _benchmark_match(predicted, task, scoring)
    kind = task.answer_type
    if kind == "choice":
        got = parse_choice(predicted, task.choices)
        gold = str(task.answer).strip().upper()
        if got is None and task.choices is None:
            ok = normalize_text(clean_answer(predicted)) == normalize_text(gold)
            return AnswerMatch(float(ok), ok, "choice_text", predicted)
        ok = got is not None and got == gold
        return AnswerMatch(float(ok), ok, "choice_letter" if got is not None else "choice_unparsed", predicted)
    if kind == "number":
        value = parse_number(predicted)
        ok = value is not None and numbers_close(value, float(task.answer), params)  # type: ignore[arg-type]
        return AnswerMatch(float(ok), ok, "number" if value is not None else "number_unparsed", predicted)
    if kind == "box":
        box = parse_box(predicted)
        if box is None:
            return AnswerMatch(0.0, False, "box_unparsed", predicted)
        overlap = iou(box, tuple(float(v) for v in task.answer))  # type: ignore[arg-type, union-attr]
        ok = overlap >= params.box_iou_threshold
        score = overlap if params.box_score == "iou" else float(ok)
        return AnswerMatch(score, ok, "box_iou", predicted)
    gold_text = str(task.answer)
    p_num, g_num = parse_number(predicted, whole=True), parse_number(gold_text, whole=True)
    if p_num is not None and g_num is not None and not (task.metadata or {}).get("exact_text"):
        ok = numbers_close(p_num, g_num, params)
        return AnswerMatch(float(ok), ok, "text_number", predicted)
    return _match_text(predicted, task, params)


def _benchmark_match(predicted: str, task: Task, scoring: str) -> AnswerMatch:
    """A benchmark's published rule (`rewards.benchmark_scoring`), asked for by the task's loader. Correct means the
    full score (ChartQAPro's rule gives partial scores; its benchmark figure is the mean `score`)."""
    from rewards.benchmark_scoring import benchmark_score

    score = benchmark_score(scoring, clean_answer(predicted), task.metadata or {}, task_id=task.id,
                            answer=task.answer, choices=task.choices)
    return AnswerMatch(score, score >= 1.0, scoring, predicted)


def _match_text(predicted: str, task: Task, params: AnswerMatchParams) -> AnswerMatch:
    """Normalised text against the answer and any alternatives in `task.metadata["answers"]`. A benchmark can
    set its own rule per task: `metadata["match"]` (`exact` / `contains`, overriding `params.text_match`; OCRBench's
    loader sets `contains`) and `metadata["ignore_spaces"]` (HME100k formulas: spaces removed before comparing).
    `contains` means the answer appears as whole words in the prediction (plain substring once spaces are
    removed, case-folded, punctuation kept), slightly stricter than OCRBench's raw substring test ("emerald" does not match "emeralds")."""
    meta = task.metadata or {}
    mode = meta.get("match", params.text_match)
    if mode not in ("exact", "contains"):
        raise ValueError(f"task {task.id}: metadata['match'] must be 'exact' or 'contains', got {mode!r}")
    squeeze = bool(meta.get("ignore_spaces"))
    alternatives = meta.get("answers") or []
    golds = [str(task.answer)] + [str(a) for a in alternatives if str(a) != str(task.answer)]

    def norm(text: str) -> str:
        if squeeze:  # formulas: punctuation is content; only case and spaces are ignored (as OCRBench does)
            return "".join(unicodedata.normalize("NFKC", text).lower().split())
        return normalize_text(text)

    p = norm(clean_answer(predicted))
    ok = False
    for gold in golds:
        g = norm(gold)
        if not g:
            continue
        if mode == "exact":
            ok = p == g
        else:
            ok = g in p if squeeze else f" {g} " in f" {p} "
        if ok:
            break
    suffix = "_any" if len(golds) > 1 else ""
    return AnswerMatch(float(ok), ok, f"text_{mode}{suffix}", predicted)
