"""How each released reward reads the response text: which final answer it scores, and its format check.

The protocol extracts one answer per episode (`Trajectory.answer`: the first `<answer>` of the final message, an
unclosed one included). The released rewards read the decoded response instead, each its own way; a reward set
that reproduces one of them selects the same reading with `answer_rule` (accuracy components) or uses the matching
format component. The response text is every turn's text in order, observations included, one turn per line
(`response_text`), as the released rewards decode the whole response.

Answer rules (`pick_answer`):

- `protocol`: `Trajectory.answer`;
- `codevision`: CodeVision recipe/codevision/reward.py `extract_answer`: with `<tool_response>` blocks removed,
  the last complete `<answer>...</answer>`, else the text after the last `<answer>`, else the last line of the
  response (when it has fewer than 500 lines);
- `last`: DeepEyes verl/utils/reward_score/vl_agent.py `compute_score`: the text after the last `<answer>` up to
  the next `</answer>` (or the end); the whole response when there is no `<answer>` (what the released code sends
  to its judge then);
- `codev`: CodeV rl/verl/utils/reward_score/vl_agent.py `extract_answer` / `extract_and_verify_answer`: in the
  text after the last `</think>`, the last `<answer>` if it is closed, else the last `\\boxed{...}` (no nested
  braces), else no answer;
- `pyvision`: PyVision-RL verl/utils/reward_score/multi_task_verifier.py `compute_score`: no answer when the final
  message has more `<answer>` than `</answer>` tags or the reverse (a format error that scores 0); else the first
  `<answer>\n\\boxed{...}\n</answer>` of the response, exactly so (newlines included), unless what it holds
  contains `<interpreter>`, `<answer>` or `\\boxed` (scored 0);
- `closed`: `pyvision` without the exact layout: the protocol's answer, none when the final message's answer tags
  are unbalanced (for rollouts that write `<answer>\\boxed{...}</answer>` without the newlines).

CodeVision's answer rule, recipe/codevision/reward.py `are_answers_equivalent`, is
`rewards.codevision_scoring.codevision_equivalent` (one place: the reward and the MVToolBench benchmark use it).

Format checks (1 = well formed): `codevision_format_ok` (CodeVision verl/workers/reward_manager/uvtr.py
`_compute_format_reward`), `codev_format_ok` (CodeV vl_agent.py `check_format_errors` plus the answer errors of
`extract_and_verify_answer`), `deepeyes_format_error` (DeepEyes vl_agent.py `compute_score`).
"""

from __future__ import annotations

import re
from typing import Literal

from rollout.trajectory import Trajectory

AnswerRule = Literal["protocol", "codevision", "last", "codev", "closed", "pyvision"]

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
_TOOL_RESPONSE = re.compile(r"<tool_response>.*?</tool_response>", re.DOTALL)
_COMPLETE_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_CODEV_BOXED = re.compile(r"\\boxed{([^}]+)}", re.DOTALL)
_PYVISION_ANSWER = re.compile(r"<answer>\n\\boxed\{(.*?)\}\n</answer>", re.DOTALL)


def response_text(traj: Trajectory) -> str:
    """The decoded response: every turn's text in order (assistant messages and observations), one turn per line
    (the decoded chat template puts a line break between turns too)."""
    return "\n".join(t.text for t in traj.turns)


def final_text(traj: Trajectory) -> str:
    """The text of the last assistant message (the one that holds the answer, when there is one)."""
    turns = traj.assistant_turns()
    return turns[-1].text if turns else ""


def codevision_answer(text: str) -> str | None:
    """CodeVision reward.py `extract_answer` on the response text (see the module docstring)."""
    if not text:
        return None
    cleaned = _TOOL_RESPONSE.sub("", text)
    complete = _COMPLETE_ANSWER.findall(cleaned)
    if complete:
        return complete[-1].strip()
    parts = cleaned.strip().split(ANSWER_OPEN)
    if len(parts) > 1:
        return parts[-1].strip()
    lines = cleaned.strip().splitlines()
    return lines[-1].strip() if lines and len(lines) < 500 else None


def last_answer_text(text: str) -> str:
    """DeepEyes' `answer_text`: after the last `<answer>`, up to the next `</answer>` (the whole text without one)."""
    return text.split(ANSWER_OPEN)[-1].split(ANSWER_CLOSE)[0].strip()


def codev_answer(text: str) -> tuple[str | None, bool]:
    """(answer, answer format error) as CodeV reads them: `extract_answer`, then the `\\boxed{}` fallback of
    `extract_and_verify_answer` (several answer tags, or several boxed answers, are a format error; none is one)."""
    tail = text.split("</think>")[-1].strip()
    if ANSWER_OPEN in tail:
        last = tail.split(ANSWER_OPEN)[-1]
        if ANSWER_CLOSE in last:
            return last.split(ANSWER_CLOSE)[0].strip(), tail.count(ANSWER_OPEN) > 1
    boxed = _CODEV_BOXED.findall(tail)
    if boxed:
        return boxed[-1], len(boxed) > 1
    return None, True


def tags_balanced(text: str) -> bool:
    """As many `<answer>` as `</answer>` in `text`."""
    return text.count(ANSWER_OPEN) == text.count(ANSWER_CLOSE)


def pick_answer(traj: Trajectory, rule: AnswerRule) -> str | None:
    """The final answer `rule` scores (see the module docstring); None when it finds none."""
    if rule == "protocol":
        return traj.answer
    if rule == "codevision":
        return codevision_answer(response_text(traj))
    if rule == "last":
        return last_answer_text(response_text(traj)) or None
    if rule == "codev":
        return codev_answer(response_text(traj))[0]
    if rule == "closed":
        return traj.answer if tags_balanced(final_text(traj)) else None
    if rule == "pyvision":
        return pyvision_answer(response_text(traj), final_text(traj))
    raise ValueError(f"unknown answer rule {rule!r}; valid: protocol, codevision, last, codev, closed, pyvision")


def pyvision_answer(text: str, final: str) -> str | None:
    """PyVision-RL `compute_score` / `extract_answer` (see the module docstring)."""
    if not tags_balanced(final):
        return None
    m = _PYVISION_ANSWER.search(text)
    if m is None:
        return None
    answer = m.group(1).strip()
    return None if any(bad in answer for bad in ("<interpreter>", ANSWER_OPEN, "\\boxed")) else answer


def codevision_format_ok(text: str, require_think: bool = True) -> bool:
    """CodeVision uvtr.py `_compute_format_reward`: with `<tool_response>` blocks removed and the text stripped, it
    starts with `<think>`, has as many `</think>` as `<think>` (at least one), exactly one complete
    `<answer>...</answer>`, which ends the text, and that answer is not opened inside a think block.
    `require_think=False` drops the two think conditions."""
    s = _TOOL_RESPONSE.sub("", text).strip()
    if require_think:
        opened = s.count("<think>")
        if not s.startswith("<think>") or opened == 0 or opened != s.count("</think>"):
            return False
    answers = list(re.finditer(r"<answer>.*?</answer>", s, re.DOTALL))
    if len(answers) != 1 or not re.search(r"<answer>.*?</answer>\s*$", s, re.DOTALL):
        return False
    a0, a1 = answers[0].start(), answers[0].end()
    for think in re.finditer(r"<think>.*?</think>", s, re.DOTALL):
        t0, t1 = think.start(), think.end()
        inside = t0 < a0 < t1 or t0 < a1 < t1
        if inside and re.search(r"<think>.*?<answer>", s[t0:t1], re.DOTALL):
            return False
    return True


def codev_format_ok(text: str) -> bool:
    """CodeV: `check_format_errors` (balanced `<code>` and `<think>` tags, no `<code>` after the last `</answer>`,
    balanced answer tags after the last `</think>`) and no answer error from `codev_answer`."""
    if text.count("<code>") != text.count("</code>") or text.count("<think>") != text.count("</think>"):
        return False
    if "<code>" in text.split(ANSWER_CLOSE)[-1]:
        return False
    if not tags_balanced(text.split("</think>")[-1]):
        return False
    return not codev_answer(text)[1]


def deepeyes_format_error(text: str) -> bool:
    """DeepEyes `compute_score`: unbalanced `<think>` tags, or unbalanced answer tags after the last `</think>`
    (the vision-token check has nothing to count in recorded text)."""
    return text.count("<think>") != text.count("</think>") or not tags_balanced(text.split("</think>")[-1])
