"""Benchmarks' own published scoring rules, for tasks whose loader asks for them (`Task.metadata["scoring"]`).

A benchmark number is only comparable with the published ones when it is computed the benchmark's way, quirks
included, so these rules are not folded into the generic matcher (`rewards.answers`):

- `ocrbench` (OCRBench's evaluation script, also VLMEvalKit's): correct when any acceptable answer is a substring
  of the prediction, both lowercased, stripped and with newlines turned into spaces; for HME100k formulas
  (`metadata["ignore_spaces"]`) all spaces are removed instead and case is kept;
- `mathvista` (MathVista's `calculate_score.py`): the prediction is normalised to the answer's type and compared
  with the answer as a string: multiple choice maps an option letter (or "(B)") to that option's text, otherwise the
  most similar option by edit distance, so duplicate option texts count as the same answer; integers are truncated
  (`str(int(float(x)))`), floats rounded to the item's `precision`, lists and text compared as written;
- `mmmu` (`rewards.mmmu_scoring`), `mathvision` (`rewards.mathvision_scoring`), `visualpuzzles`
  (`rewards.visualpuzzles_scoring`), `chartqapro` (`rewards.chartqapro_scoring`, a fractional score),
  `vlmsareblind` (`rewards.vlmsareblind_scoring`), `mvtoolbench` (`rewards.codevision_scoring`, CodeVision's
  rule path; its LLM judge is the accuracy component's optional `judge`);
- `mathverse` (MathVerse's `score_answer_s2.py --quick_match`, the rule-based path of an evaluation that otherwise
  asks GPT-4 to extract and judge): the extracted answer equals the answer string. The extraction step is ours: a
  multiple-choice prediction gives its letter ("B", "(B)", "B: 60°", "B. 60°"), which also matches an answer
  written "(B)" or as option B's text ("False"); free-form answers are compared as written (stripped; the answer
  also with the `$`/`\\mathrm{}` wrapping removed that the prediction loses on extraction), and as numbers when both
  are numbers ("14.0" = "14"), which the GPT-4 extraction would do. Answers such as "Area $=9.4 \\mathrm{~cm}^{2}$"
  then match only a prediction written the same way: as in the official evaluation, such items need the judge
  (the answer-accuracy component's optional `judge`, for text tasks) to credit "9.4".

`benchmark_score` dispatches on the name; each rule module's docstring restates its published rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rewards.codevision_scoring import codevision_equivalent
from rewards.mathvision_scoring import mathvision_correct
from rewards.mmmu_scoring import open_correct, parse_multi_choice, parse_open
from rewards.visualpuzzles_scoring import visualpuzzles_correct
from rewards.vlmsareblind_scoring import vlmsareblind_correct

SCORINGS: tuple[str, ...] = ("ocrbench", "mathvista", "mmmu", "mathverse", "mathvision", "visualpuzzles",
                              "chartqapro", "vlmsareblind", "mvtoolbench")


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


_LETTER = re.compile(r"^\(?([A-Z])\)?(?:[:.)\s]|$)")
_ONE_LETTER = re.compile(r"^\(?([A-Z])\)?$")


def mathverse_extract(predicted: str, question_type: str) -> str:
    """The extraction MathVerse's judge compares: the option letter for multiple choice, else the text stripped."""
    text = predicted.strip()
    if question_type == "multi-choice":
        m = _LETTER.match(text)
        if m:
            return m.group(1)
    return text


def mathverse_correct(predicted: str, answer: str, question_type: str, options: Sequence[str] | None = None) -> bool:
    """MathVerse's quick match (see the module docstring)."""
    from rewards.answers import clean_answer  # here: rewards.answers imports this module

    got, gold = mathverse_extract(predicted, question_type), answer.strip()
    gold_letter = _ONE_LETTER.match(gold)
    if predicted.strip() == gold or got == gold or got == clean_answer(gold) or (question_type == "multi-choice" and gold_letter is not None
                                                    and got == gold_letter.group(1)):
        return True  # "(C)" is the letter C
    if options and len(got) == 1 and 0 <= ord(got) - ord("A") < len(options) and options[ord(got) - ord("A")] == gold:
        return True  # the answer is written as the option's text ("False") and the prediction names that option
    try:
        return float(got) == float(gold)
    except ValueError:
        return False


def benchmark_score(scoring: str, predicted: str, meta: dict[str, Any], *, task_id: str, answer: Any,
                    choices: Sequence[str] | None) -> float:
    """The score in [0, 1] that benchmark `scoring`'s published rule gives `predicted` (the extracted final answer).
    Raises ValueError for an unknown name or metadata the rule needs but the task lacks."""
    try:
        if scoring == "ocrbench":
            answers = [str(a) for a in (meta.get("answers") or [answer])]
            return float(ocrbench_correct(predicted, answers, ignore_spaces=bool(meta.get("ignore_spaces"))))
        if scoring == "mathvista":
            return float(mathvista_correct(predicted, meta, choices))
        if scoring == "mmmu":
            gold = meta["mmmu_answer"]
            if meta["question_type"] == "multiple-choice":
                options = [str(o) for o in (choices or [])]
                letters = [chr(ord("A") + i) for i in range(len(options))]
                got = parse_multi_choice(predicted, letters, options, seed=task_id)
                return float(got in gold if isinstance(gold, list) else got == gold)
            return float(open_correct(parse_open(predicted), gold))
        if scoring == "mathverse":
            return float(mathverse_correct(predicted, str(meta["answer_text"]), str(meta["question_type"]),
                                           meta.get("options")))
        if scoring == "mathvision":
            return float(mathvision_correct(predicted, str(meta["answer_text"]), meta.get("options") or None))
        if scoring == "visualpuzzles":
            return float(visualpuzzles_correct(predicted, str(answer), meta.get("options"), seed=task_id))
        if scoring == "chartqapro":
            from rewards.chartqapro_scoring import chartqapro_score  # here: it imports edit_distance from this module

            return chartqapro_score(predicted, [str(a) for a in meta["chartqapro_answers"]], str(meta["question_type"]),
                                    [str(y) for y in meta.get("year") or []])
        if scoring == "vlmsareblind":
            return float(vlmsareblind_correct(predicted, str(meta["task"]), str(meta["answer_text"])))
        if scoring == "mvtoolbench":
            return float(codevision_equivalent(predicted, str(meta["answer_text"])))
    except KeyError as exc:
        raise ValueError(f"task {task_id}: metadata lacks {exc} that the {scoring} scoring needs; reload the "
                         "benchmark with its loader") from None
    raise ValueError(f"task {task_id}: unknown metadata['scoring'] {scoring!r}; valid: {', '.join(SCORINGS)}")
