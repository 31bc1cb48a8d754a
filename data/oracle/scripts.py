"""Oracle scripts: the assistant turns (thinking text + code, or the answer) of a correct trajectory for a task.

A script is written from the task's ground truth (the required orientation op, the evidence box, the answer, and
for symbolic tasks the analysis code, `data.oracle.analysis_code`), but it only ever says what the trajectory has
shown so far: the question, the input image as the model receives it (`max_pixels`), and earlier observations.
So it searches before it zooms: a labelled grid over the image, a look at candidate cells, then the zoom that reads
the answer (`data.oracle.search`); every coordinate in its code comes from a box an earlier block printed. An
orientation is stated only when it can be seen: in the input when the text is legible there, otherwise in the zoom
that makes the text legible (then the zoomed crop is turned upright). `data.oracle.grounding` checks this on every
trajectory. The code is real code that the episode loop runs in the sandbox (`data.oracle.build`), so every
observation in the saved trajectory is what the code really produced; only the words are fixed in advance.

Phrasing and code idioms vary with a generator seeded by (task id, variant, seed), so a dataset does not repeat one
sentence, and the same inputs always give the same script.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data.oracle.analysis_code import FINDING, analysis_code, colour_listing_code
from data.oracle.search import GRID_HELPERS, SearchPlan, candidates_code, cell_zoom_code, plan_search, \
    position_words, reading_box, reading_code, view_reading, zoom_box, zoom_code
from data.oracle.variants import applicable_variants, check_variant, is_symbolic, needs_crop, orientation_op
from data.orientation import DESCRIPTION, inverse, map_box, output_size, pil_code
from data.resolution import DEFAULT_MAX_PIXELS
from rollout.task import Task

Box = tuple[int, int, int, int]

UNDO = {
    "rotate90": "rotate it 90 degrees counter-clockwise",
    "rotate270": "rotate it 90 degrees clockwise",
    "rotate180": "rotate it by 180 degrees",
    "flip_h": "mirror it left to right",
    "flip_v": "flip it top to bottom",
}
IMPORTS = "from PIL import Image, ImageOps, ImageEnhance"
# Quarter turns of a landscape put the sky on one side, visible at any resolution: where, for the op that fixes it.
# (A half turn and a vertical flip both put it at the bottom, and a mirror leaves it on top: for those, the zoom on
# the characters is what shows the transform.)
SEEN_FROM_SCENE = {"rotate270": "left", "rotate90": "right"}


@dataclass(frozen=True)
class OracleTurn:
    """One assistant message: thinking text and either code or the final answer. `expect_error`: this block is
    meant to fail (the first block of an error-recovery script). `reading`: a box the text states from looking at
    an image of an earlier observation (`reading_from`; in that image's pixels); the build checks that the evidence
    really is there and visible at the model's resolution, which is what allows those numbers."""

    text: str
    code: str | None = None
    answer: str | None = None
    expect_error: bool = False
    reading: tuple[int, int, int, int] | None = None  # a box read off an image of an earlier observation
    reading_from: tuple[int, int] = (1, 0)  # (observations back: 1 = the previous one, image index in it)


@dataclass
class OracleScript:
    """A task's oracle for one variant, with what running it must show: the core ops in the sandbox's trace and,
    when it crops, the final crop box in the coordinates of the image as given."""

    task_id: str
    variant: str
    turns: list[OracleTurn]
    expected_ops: set[str] = field(default_factory=set)
    final_crop: Box | None = None

    def render(self, protocol: Any) -> list[str]:
        """The assistant messages in `protocol`'s format."""
        return [protocol.format_assistant(t.text, code=t.code, answer=t.answer) for t in self.turns]


class OracleUnavailable(ValueError):
    """The variant does not apply to the task (e.g. no_tool for a task that requires a crop)."""


# ---- small helpers ----------------------------------------------------------------------------------------------


def _rng(task: Task, variant: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{task.id}|{variant}|{seed}".encode()))


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def answer_text(task: Task) -> str:
    """The task's answer as the model should write it inside the answer tags."""
    a = task.answer
    if task.answer_type == "number":
        return _fmt_number(float(a))  # type: ignore[arg-type]
    if task.answer_type == "box":
        return "[" + ", ".join(_fmt_number(float(v)) for v in a) + "]"  # type: ignore[union-attr]
    return str(a)


def answer_phrase(task: Task) -> str:
    """The answer in a sentence ("B (violin)", "\"vortex\"", "42")."""
    a = answer_text(task)
    if task.answer_type == "choice" and task.choices:
        idx = ord(a.strip().upper()) - ord("A")
        if 0 <= idx < len(task.choices):
            return f"{a} ({task.choices[idx]})"
    if task.answer_type == "text":
        return f'"{a}"'
    return a


def image_size(task: Task) -> tuple[int, int]:
    """(width, height) of the task's first image: from metadata when the generator recorded it, else the file."""
    size = task.metadata.get("image_size")
    if size:
        return int(size[0]), int(size[1])
    from PIL import Image

    with Image.open(Path(task.images[0])) as im:
        return im.size


def _target_name(task: Task) -> str:
    """How the question names what to look at (generators record it; never the answer, unlike some labels)."""
    return str(task.metadata.get("referent") or "the detail the question asks about")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# ---- turns shared by variants ----------------------------------------------------------------------------------


def _fix_code(op: str, var: str, out: str, size: tuple[int, int], rng: np.random.Generator) -> str:
    """Undo `op` on PIL image `var` and show the result (reduced to about 1024 px when large)."""
    w, h = output_size(size, op)
    k = max(1, math.ceil(max(w, h) / 1024))
    lines = [IMPORTS, f"{out} = {pil_code(op, var, int(rng.integers(2)))}", f"print('{out} size:', {out}.size)",
             f"show({out})" if k == 1 else f"show({out}.reduce({k}))"]
    return "\n".join(lines)


def _looks(op: str) -> str:
    """How an image that needs `op` looks."""
    return DESCRIPTION[inverse(op)]


def _final(task: Task, rng: np.random.Generator, seen: str) -> OracleTurn:
    text = _pick(rng, [
        f"{seen} The answer is {answer_phrase(task)}.",
        f"{seen} Answer: {answer_phrase(task)}.",
        f"{seen} That gives {answer_phrase(task)}.",
    ])
    return OracleTurn(text=text, answer=answer_text(task))


def _seen_after_fix(task: Task) -> str:
    if task.metadata.get("task_type") == "orientation":
        return "Now the text is upright and easy to read."
    return "The image is upright now."


def _seen_after_crop(task: Task) -> str:
    return f"In the enlarged crop, {_target_name(task)} is clearly visible."


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass
class _Search:
    turns: list[OracleTurn]
    final_box: Box  # in the searched image's coordinates
    out: str  # the variable holding the final view


def _plan(task: Task, size: tuple[int, int], box: Sequence[float], rng: np.random.Generator, n: int) -> SearchPlan:
    distractors = [d["box"] if isinstance(d, dict) else d for d in task.metadata.get("distractor_boxes") or []]
    plan = plan_search(size, box, rng, n_candidates=n, distractors=distractors)
    if plan is None:
        raise OracleUnavailable(f"task {task.id}: the evidence box {list(box)} is too large for a grid search in a "
                                f"{size[0]}x{size[1]} image")
    return plan


def _search(task: Task, src: str, size: tuple[int, int], box: Sequence[float], rng: np.random.Generator, *,
            explore: bool = False, enhance: bool = False, first_text: str | None = None, helpers: bool = True
            ) -> _Search:
    """Candidate cells, then the zoom on what the right one shows (with `explore`: three candidates and a zoom into
    a wrong one first)."""
    plan = _plan(task, size, box, rng, 3 if explore else 2)
    name = _target_name(task)
    places = _join([f"{position_words(plan, c)} ({c})" for c in plan.candidates])
    grid_words = f"a {plan.rows}x{plan.cols} grid (rows A-{'ABCDEFGH'[plan.rows - 1]} from the top, columns " \
                 f"1-{plan.cols} from the left)"
    intro = first_text or _pick(rng, [
        f"The question is about {name}, which is far too small to make out in this {size[0]}x{size[1]} image. "
        f"There are small marks that could be it in the {places} part of the image. I'll split the image into "
        f"{grid_words} and enlarge those cells" + (", each with a finer labelled grid." if explore else "."),
        f"{_cap(name)} must be tiny here: I can only see small spots that might be it, in the {places} part. Let me "
        f"cut the image into {grid_words} and look at those cells closely" + (", each with a sub-grid." if explore
                                                                              else "."),
    ])
    turns = [OracleTurn(intro, code=candidates_code(src, plan, size, helpers=helpers, sub_grids=explore))]
    others = [c for c in plan.candidates if c != plan.cell]
    reading = view_reading(plan, size, box, rng)
    pos = plan.candidates.index(plan.cell)
    spans = f"{name} spans about ({reading[0]}, {reading[1]}) to ({reading[2]}, {reading[3]})"
    if explore:
        wrong = _wrong_zoom(plan, size, box)
        if wrong is not None:
            wc, ws = wrong
            turns.append(OracleTurn(
                f"Cell {wc} has a small mark in sub-cell {ws} that might be {name}; let me zoom in on it first.",
                code=zoom_code(src, plan, size, wc, ws, out="look")))
            turns.append(OracleTurn(_pick(rng, [
                f"That is only clutter, not {name}. Back in the view of cell {plan.cell}, {spans}; cropping there.",
                f"No, this is not {name}. In the enlarged view of cell {plan.cell}, {spans}. Let me crop that.",
            ]), code=reading_code(src, plan, size, reading, enhance=enhance), reading=reading, reading_from=(2, pos)))
            return _Search(turns, reading_box(plan, size, reading), "detail")
    rest = f"; {_join(others)} show{'s' if len(others) == 1 else ''} only clutter" if others else ""
    turns.append(OracleTurn(_pick(rng, [
        f"There it is: in the enlarged view of cell {plan.cell}, {spans}{rest}. I'll crop just that part and "
        "enlarge it.",
        f"In the view of cell {plan.cell}, {spans}{rest}. Zooming in on it.",
    ]) + (" I'll also raise the contrast and sharpness." if enhance else ""),
        code=reading_code(src, plan, size, reading, enhance=enhance), reading=reading, reading_from=(1, pos)))
    return _Search(turns, reading_box(plan, size, reading), "detail")


def _wrong_zoom(plan: SearchPlan, size: tuple[int, int], target: Sequence[float]) -> tuple[str, str] | None:
    """A (cell, sub-cell) among the other candidates whose zoom does not show the target."""
    for cell in plan.candidates:
        if cell == plan.cell:
            continue
        for sub in ("b2", "a1", "c3", "a3", "c1"):
            z = zoom_box(plan, size, cell, sub)
            if z[2] <= target[0] or z[0] >= target[2] or z[3] <= target[1] or z[1] >= target[3]:
                return cell, sub
    return None


def _fix_detail(task: Task, op: str, var: str, rng: np.random.Generator) -> OracleTurn:
    """After a zoom made the characters legible: say how they look, and turn the crop upright."""
    name = _target_name(task)
    return OracleTurn(_pick(rng, [
        f"Now {name} is legible, but it is {_looks(op)}. I'll {UNDO[op]} to read it properly.",
        f"The zoom shows {name} {_looks(op)}, so the whole image is {_looks(op)}. Let me {UNDO[op]}.",
    ]), code=f"upright = {pil_code(op, var, int(rng.integers(2)))}\nshow(upright)")


def _orientation_seen(task: Task, op: str, rng: np.random.Generator) -> str:
    """The orientation as the input shows it (only used when the text is legible in the input)."""
    what = "text" if task.metadata.get("task_type") in ("orientation", "ocrbench") else "image"
    return _pick(rng, [
        f"The {what} is legible in the image as given, but it is {_looks(op)}. Before reading it I'll {UNDO[op]}.",
        f"Looking at the image, the {what} is {_looks(op)}, so reading it as is would be error-prone. Let me "
        f"{UNDO[op]} first.",
        f"The {what} is not upright: it is {_looks(op)}. I'll {UNDO[op]} to restore the normal orientation.",
    ])


# ---- variants ---------------------------------------------------------------------------------------------------


def _symbolic(task: Task, var: str, rng: np.random.Generator) -> list[OracleTurn]:
    kind = task.metadata["symbolic_kind"]
    finding = FINDING[kind].format(answer=answer_text(task), parts=1 if answer_text(task) == "Yes" else 2)
    if kind == "counting":
        colour = task.metadata["target_colour"]
        return [OracleTurn(_pick(rng, [
            f"Counting by eye is unreliable; I'll count the {colour} shapes from the pixels. First, which colours "
            "does the image use?",
            f"Let me measure this. To find the exact {colour}, I'll list the colours in the image first.",
        ]), code=colour_listing_code(var)),
            OracleTurn(f"{tuple(task.metadata['target_rgb'])} is the {colour}. Now I'll count its separate blobs.",
                       code=analysis_code(task, var)),
            _final(task, rng, finding)]
    intro = _pick(rng, [
        "Judging this by eye is unreliable, so I'll measure it from the pixels.",
        "Let me analyse the pixels directly instead of estimating visually.",
        "I'll check this with a little image analysis.",
    ])
    return [OracleTurn(intro, code=analysis_code(task, var)), _final(task, rng, finding)]


def _single_tool(task: Task, var: str, size: tuple[int, int], rng: np.random.Generator) -> OracleScript:
    if is_symbolic(task):
        return OracleScript(task.id, "single_tool", _symbolic(task, var, rng))
    op = orientation_op(task)
    if op is not None:
        return OracleScript(task.id, "single_tool",
                            [OracleTurn(_orientation_seen(task, op, rng), code=_fix_code(op, var, "fixed", size, rng)),
                             _final(task, rng, _seen_after_fix(task))], expected_ops={op})
    s = _search(task, var, size, task.evidence[0].box, rng)
    return OracleScript(task.id, "single_tool", [*s.turns, _final(task, rng, _seen_after_crop(task))],
                        expected_ops={"crop"}, final_crop=s.final_box)


def _multi_tool(task: Task, var: str, size: tuple[int, int], rng: np.random.Generator, *, explore: bool = False,
                variant: str = "multi_tool") -> OracleScript:
    op = orientation_op(task)
    box = task.evidence[0].box
    if op is not None and not needs_crop(task):
        # The orientation is visible in the input: fix it, then zoom on the asked part of the upright image.
        fixed_size = output_size(size, op)
        fixed_box = map_box(box, op, size)
        plan = _plan(task, fixed_size, fixed_box, rng, 1)
        label = _target_name(task)
        turns = [OracleTurn(_orientation_seen(task, op, rng), code=_fix_code(op, var, "fixed", size, rng)),
                 OracleTurn(f"{_seen_after_fix(task)} {_cap(label)} is in the {position_words(plan, plan.cell)} "
                            f"part: cell {plan.cell} of a {plan.rows}x{plan.cols} grid. I'll zoom in on that cell to "
                            "read it closely.", code=cell_zoom_code("fixed", plan, fixed_size)),
                 _final(task, rng, _seen_after_crop(task))]
        final = map_box(zoom_box(plan, fixed_size, plan.cell, None), inverse(op), fixed_size)
        return OracleScript(task.id, variant, turns, expected_ops={op, "crop"},
                            final_crop=tuple(int(round(v)) for v in final))  # type: ignore[arg-type]
    if op in SEEN_FROM_SCENE and task.metadata.get("up_cue") == "landscape":
        # The sky is on one side: the quarter turn is visible in the input. Fix it first, then search upright.
        fixed_size = output_size(size, op)
        side = SEEN_FROM_SCENE[op]
        intro = _pick(rng, [
            f"The sky and the horizon are on the {side} side of the image, so the scene is {_looks(op)}. I'll "
            f"{UNDO[op]} before searching.",
            f"Looking at the scene, the ground is opposite the sky, which is on the {side}: the picture is "
            f"{_looks(op)}. Let me {UNDO[op]} first.",
        ])
        s = _search(task, "fixed", fixed_size, map_box(box, op, size), rng, explore=explore)
        turns = [OracleTurn(intro, code=_fix_code(op, var, "fixed", size, rng)), *s.turns,
                 _final(task, rng, _seen_after_crop(task))]
        final = map_box(s.final_box, inverse(op), fixed_size)
        return OracleScript(task.id, variant, turns, expected_ops={op, "crop"},
                            final_crop=tuple(int(round(v)) for v in final))  # type: ignore[arg-type]
    s = _search(task, var, size, box, rng, explore=explore, enhance=(op is None and not explore))
    turns = list(s.turns)
    expected = {"crop"}
    if op is not None:  # the zoom is what shows the characters, and how they are turned
        turns.append(_fix_detail(task, op, s.out, rng))
        expected.add(op)
        turns.append(_final(task, rng, f"Upright, {_target_name(task)} reads clearly."))
    else:
        turns.append(_final(task, rng, _seen_after_crop(task)))
    return OracleScript(task.id, variant, turns, expected_ops=expected, final_crop=s.final_box)


def _multi_crop(task: Task, var: str, size: tuple[int, int], rng: np.random.Generator) -> OracleScript:
    return _multi_tool(task, var, size, rng, explore=True, variant="multi_crop")


def _error_recovery(task: Task, var: str, size: tuple[int, int], rng: np.random.Generator) -> OracleScript:
    k = int(rng.integers(2))
    if is_symbolic(task) and task.metadata["symbolic_kind"] == "counting":
        colour, rgb = task.metadata["target_colour"], tuple(task.metadata["target_rgb"])
        bad = colour_listing_code(var) + "\nmask = (arr == np.array(target)).all(axis=-1)\nprint(mask.sum())"
        rest = _symbolic(task, var, rng)
        return OracleScript(task.id, "error_recovery", [
            OracleTurn(f"I'll list the colours in the image and mask the {colour} pixels.", code=bad, expect_error=True),
            OracleTurn(f"I used target before choosing it. From the list, {rgb} is the {colour}; now I'll count its "
                       "separate blobs.", code=rest[1].code), *rest[2:]])
    if is_symbolic(task):
        bad = [f"import numpy as np\nh, w = {var}.shape[:2]\nprint(h, w)",
               "import numpy as np\narr = np.array(img)\nprint(arr.shape)"][k]
        why = ["A PIL image has no .shape; I need to convert it to a NumPy array first.",
               f"There is no variable named img; the input image is {var}."][k]
        rest = _symbolic(task, var, rng)
        first = OracleTurn("Let me start by checking the image dimensions.", code=bad, expect_error=True)
        return OracleScript(task.id, "error_recovery",
                            [first, OracleTurn(f"{why} {rest[0].text}", code=rest[0].code), *rest[1:]])
    op = orientation_op(task)
    if op is not None and not needs_crop(task):
        rest = _single_tool(task, var, size, rng)  # type: ignore[assignment]
    else:
        rest = _multi_tool(task, var, size, rng) if op is not None else _single_tool(task, var, size, rng)  # type: ignore[assignment]
    first_code = rest.turns[0].code or ""  # type: ignore[attr-defined]
    if op is not None and "cells = " not in first_code:  # the script starts with the orientation fix
        cv2_code = {"rotate90": "cv2.ROTATE_90_COUNTERCLOCKWISE", "rotate270": "cv2.ROTATE_90_CLOCKWISE",
                    "rotate180": "cv2.ROTATE_180"}
        if k == 0:
            call = f"cv2.rotate({var}, {cv2_code[op]})" if op in cv2_code else \
                f"cv2.flip({var}, {1 if op == 'flip_h' else 0})"
            bad = f"import cv2\nfixed = {call}\nshow(fixed)"
            why = "OpenCV needs a NumPy array, not a PIL image. I'll use PIL's own methods instead."
        else:
            bad = f"{IMPORTS}\nfixed = {pil_code(op, 'img')}\nshow(fixed)"
            why = f"The image variable is {var}, not img."
        turns = [OracleTurn(rest.turns[0].text, code=bad, expect_error=True),  # type: ignore[attr-defined]
                 OracleTurn(why, code=first_code), *rest.turns[1:]]  # type: ignore[attr-defined]
        return OracleScript(task.id, "error_recovery", turns, expected_ops=rest.expected_ops,  # type: ignore[attr-defined]
                            final_crop=rest.final_crop)  # type: ignore[attr-defined]
    k = int(rng.integers(3))
    compact = "cells = grid(" not in first_code
    if compact:  # W, H = image.size; cells = {...}; def grow ...
        cells_line = next(line for line in first_code.splitlines() if line.startswith("cells = "))
        bad = ["\n".join(ln for ln in first_code.splitlines() if not ln.startswith("W, H = ")),  # size not read
               f"W, H = {var}.shape[:2]\nprint(W, H)",
               first_code.replace(f"W, H = {var}.size", "W, H = image.size" if var != "image" else "W, H = img.size")
               ][k]
        why = ["W and H are not defined yet: I have to read the image size first.",
               "A PIL image has no .shape; its size is .size, and the prompt gives it anyway. On to the grid.",
               f"That variable does not exist; the input image is {var}."][k]
    else:
        cells_line = next(line for line in first_code.splitlines() if line.startswith("cells = grid("))
        bad = [cells_line + "\nprint(cells)",  # the helper is used before it is defined
               f"W, H = {var}.shape[:2]\nprint(W, H)",
               GRID_HELPERS + "\n\n" + cells_line.replace(f"grid({var},", "grid(image,") + "\nprint(cells)"][k]
        if var == "image" and k == 2:
            bad = bad.replace("grid(image,", "grid(img,")
        why = ["grid is not defined yet: I have to define the helper functions first.",
               "A PIL image has no .shape; its size is .size, and the prompt gives it anyway. On to the grid.",
               f"That variable does not exist; the input image is {var}."][k]
    first = OracleTurn(rest.turns[0].text, code=bad, expect_error=True)  # type: ignore[attr-defined]
    turns = [first, OracleTurn(why, code=first_code), *rest.turns[1:]]  # type: ignore[attr-defined]
    return OracleScript(task.id, "error_recovery", turns, expected_ops=rest.expected_ops, final_crop=rest.final_crop)  # type: ignore[attr-defined]


def _no_tool(task: Task, var: str, size: tuple[int, int], rng: np.random.Generator) -> OracleScript:
    if is_symbolic(task):
        seen = _pick(rng, ["Looking carefully at the figure,", "Inspecting the image closely,",
                           "Going over the figure element by element,"])
        return OracleScript(task.id, "no_tool", [_final(task, rng, f"{seen} I can answer directly.")])
    seen = _pick(rng, ["The text is upright and clearly legible, so no tool is needed.",
                       "Everything needed is clearly visible in the image as it is.",
                       "No processing is needed here: the image is upright and the text is large."])
    return OracleScript(task.id, "no_tool", [_final(task, rng, seen)])


_BUILDERS = {"single_tool": _single_tool, "multi_tool": _multi_tool, "multi_crop": _multi_crop,
             "error_recovery": _error_recovery, "no_tool": _no_tool}


def oracle_script(task: Task, variant: str, *, image_var: str = "image_clue_0", seed: int = 0,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> OracleScript:
    """The oracle script of `task` for `variant`; `OracleUnavailable` if the variant does not apply (legibility is
    judged at the model's input resolution, `max_pixels`)."""
    check_variant(variant)
    applicable = applicable_variants(task, max_pixels)
    if variant not in applicable:
        raise OracleUnavailable(f"variant {variant!r} does not apply to task {task.id} (required ops "
                                f"{task.required_ops}, {len(task.evidence)} evidence box(es)); applicable: "
                                f"{', '.join(applicable) or 'none'}")
    return _BUILDERS[variant](task, image_var, image_size(task), _rng(task, variant, seed))
