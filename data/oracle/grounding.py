"""The grounding check: an oracle trajectory states nothing it has not been shown.

An oracle script is written by someone who knows the answer and the evidence box; the trajectory it produces must
still read as the work of a model that only saw the question, the input image and the observations so far.
`grounding_problems(traj)` checks what can be checked mechanically, on the trajectory as it ran:

- coordinates: every integer of 13 or more in an assistant message's prose, and every such integer in a tuple or list
  of numbers in its code (crop boxes, points, colours), must already appear in the prompt (question, image sizes)
  or in the text of an earlier observation. Exempt: angles written as degrees ("90 degrees", `rotate(270, ...)`),
  255 (a colour channel's maximum), and in the final message the numbers of the answer itself;
- the answer: a text or number answer (two characters or more, not part of the question) does not appear in any
  assistant message before the last observation, i.e. nothing is read before it has been looked at;
- readings: numbers a message reads off an image it was shown (where the target is in an enlarged view) are
  passed in `readings` and checked by the caller against the evidence box and the view's traced region;
- observations: no host paths (a traceback frame from outside the user's code, a file of the repository).

Small integers (0-12) are grid sizes, zoom factors and cell labels, not positions, and are not checked.
"""

from __future__ import annotations

import ast
import re
from typing import Any

_INT = re.compile(r"(?<![\w.])\d+(?![\d])")
_DEGREES = re.compile(r"(\d+)\s*(?:-\s*)?(?:degrees?|deg\b|°)", re.IGNORECASE)
_HOST_PATH = re.compile(r'File "/|/site-packages/|/sandbox/\w+\.py')
MIN_CHECKED = 13
EXEMPT = {255}


def _ints(text: str) -> set[int]:
    degrees = {m.start(1) for m in _DEGREES.finditer(text)}
    return {int(m.group()) for m in _INT.finditer(text) if m.start() not in degrees}


def _code_coordinates(code: str) -> set[int]:
    """Integers >= MIN_CHECKED inside tuples/lists of numbers in `code` (angles in rotate(...) are not positions)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return _ints(code)
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List)):
            nums = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, int)
                    and not isinstance(e.value, bool)]
            nums += [-e.operand.value for e in node.elts if isinstance(e, ast.UnaryOp)
                     and isinstance(e.operand, ast.Constant) and isinstance(e.operand.value, int)]
            out |= {abs(v) for v in nums}
        if isinstance(node, ast.Subscript) and isinstance(node.slice, (ast.Slice, ast.Tuple)):
            for c in ast.walk(node.slice):
                if isinstance(c, ast.Constant) and isinstance(c.value, int):
                    out.add(abs(c.value))
    return out


def _prose(turn: Any, protocol: Any) -> str:
    """An assistant message without its code block and answer (what it says, not what it runs)."""
    text = turn.text
    for tag in (protocol.code_open, protocol.answer_open):
        i = text.find(tag)
        if i >= 0:
            text = text[:i]
    return text


def _prompt_text(traj: Any) -> str:
    parts = [traj.task.question]
    for msg in traj.prompt_messages:
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict)]
    return "\n".join(parts)


def grounding_problems(traj: Any, answer: str | None = None, readings: dict[int, set[int]] | None = None
                       ) -> list[str]:
    """What in `traj` was stated before it was shown (empty when nothing); `answer` is the answer as written in the
    final message (default: the trajectory's). `readings`: per assistant turn (index into `traj.turns`), numbers
    it read off an earlier image, checked separately (`data.oracle.build`: the evidence is really there, visibly)."""
    from rollout.protocols import get_protocol

    protocol = get_protocol(traj.protocol)
    problems: list[str] = []
    shown = _ints(_prompt_text(traj))
    question = traj.task.question.lower()
    answer = answer if answer is not None else (traj.answer or "")
    answer_ints = _ints(answer)
    obs_idx = [i for i, t in enumerate(traj.turns) if t.role == "observation"]
    last_obs = obs_idx[-1] if obs_idx else -1
    leak_check = len(answer) >= 2 and answer.lower() not in question and traj.task.answer_type in ("text", "number")
    for i, turn in enumerate(traj.turns):
        if turn.role == "observation":
            if _HOST_PATH.search(turn.text):
                problems.append(f"turn {i}: the observation shows a host path: {_HOST_PATH.search(turn.text).group()!r}")  # type: ignore[union-attr]
            shown |= _ints(turn.text)
            continue
        final = turn.answer is not None
        prose = _prose(turn, protocol)
        stated = {v for v in _ints(prose) if v >= MIN_CHECKED and v not in EXEMPT}
        if turn.code:
            stated |= {v for v in _code_coordinates(turn.code) if v >= MIN_CHECKED and v not in EXEMPT}
            stated -= {v for v in (90, 180, 270) if re.search(rf"rotate\(\s*-?{v}\b", turn.code)}
        if final:
            stated -= answer_ints
        stated -= (readings or {}).get(i, set())
        unseen = sorted(stated - shown)
        if unseen:
            problems.append(f"turn {i}: states {unseen} before any observation showed them")
        if leak_check and i < last_obs and answer.lower() in (prose + "\n" + (turn.code or "")).lower():
            problems.append(f"turn {i}: states the answer {answer!r} before the observation that shows it")
    return problems
