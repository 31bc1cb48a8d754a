"""Grid search: how an oracle finds a small target using only what its observations show.

The oracle knows the evidence box, but the trajectory must not: every coordinate it writes has to be printed by an
earlier code block (`data.oracle.grounding`). So the search is done with labelled grids whose cell boxes the code
computes and prints:

1. candidates: the input (as the model sees it) shows where small marks are; the image is split into an R x C grid
   (rows A, B, ... from the top, columns 1, 2, ... from the left) and two or three cells that could hold the target
   are shown enlarged, each widened by 25%, their boxes printed (for `multi_crop`, each with a labelled 3 x 3
   sub-grid, a1 ... c3, whose boxes are printed too);
2. zoom: in the enlarged view of the right cell the target is visible; the text says where it is in that view (a
   reading, checked against the evidence and the view's traced region by `data.oracle.build`), and the code crops
   that part, converted back to image pixels, and enlarges it: the view that reads the answer.
   (`multi_crop` first zooms into a sub-cell of a wrong candidate, by its printed label.)

The model's decisions in the text are choices of cells it can judge by looking, or readings off a view in which
the target is visible; every other number comes from printed output. The grid arithmetic below is the same integer arithmetic as
the code the oracle writes (`GRID_HELPERS`), so the oracle knows which cell the code will crop, and
`data.oracle.build` checks on the real trace that the final crop contains the evidence box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]

CANDIDATE_GROW = 0.25
ZOOM_GROW = 0.5
SUB_GRID = (3, 3)
MAX_CROP_SHARE = 0.5  # an oracle never crops more than this share of the image (such a crop zooms nothing)

GRID_HELPERS = """from PIL import Image, ImageDraw, ImageFont, ImageOps, ImageEnhance

def grid(img, rows, cols, x0=0, y0=0, letters="ABCDEFGH"):
    # cells A1, A2, ... (row letter, column number) as boxes in full-image coordinates
    w, h = img.size
    return {f"{letters[r]}{c + 1}": (x0 + c * w // cols, y0 + r * h // rows,
                                     x0 + (c + 1) * w // cols, y0 + (r + 1) * h // rows)
            for r in range(rows) for c in range(cols)}

def grow(box, frac, size):
    # box widened by frac of its width and height on every side, kept inside the image
    x1, y1, x2, y2 = box
    dx, dy = int((x2 - x1) * frac), int((y2 - y1) * frac)
    return (max(0, x1 - dx), max(0, y1 - dy), min(size[0], x2 + dx), min(size[1], y2 + dy))"""

WITH_GRID_HELPER = """def with_grid(img, cells, x0=0, y0=0, k=1):
    # img (a region from x0, y0, enlarged k times) with the cells outlined and labelled
    out = img.convert("RGB")
    if k != 1:
        out = out.resize((out.width * k, out.height * k), Image.Resampling.LANCZOS)
    d = ImageDraw.Draw(out)
    for name, (x1, y1, x2, y2) in cells.items():
        a, b, c, e = (x1 - x0) * k, (y1 - y0) * k, (x2 - x0) * k, (y2 - y0) * k
        font = ImageFont.load_default(size=max(12, (e - b) // 6))
        d.rectangle((a, b, c - 1, e - 1), outline="magenta", width=3)
        d.text((a + 6, b + 4), name, fill="magenta", font=font, stroke_width=2, stroke_fill="white")
    return out"""


def grid(size: tuple[int, int], rows: int, cols: int, x0: int = 0, y0: int = 0, letters: str = "ABCDEFGH"
         ) -> dict[str, Box]:
    """The cells `GRID_HELPERS.grid` computes for an image (or region) of `size` at offset (x0, y0)."""
    w, h = size
    return {f"{letters[r]}{c + 1}": (x0 + c * w // cols, y0 + r * h // rows, x0 + (c + 1) * w // cols,
                                     y0 + (r + 1) * h // rows)
            for r in range(rows) for c in range(cols)}


def grow(box: Sequence[int], frac: float, size: tuple[int, int]) -> Box:
    """`GRID_HELPERS.grow`."""
    x1, y1, x2, y2 = (int(v) for v in box)
    dx, dy = int((x2 - x1) * frac), int((y2 - y1) * frac)
    return (max(0, x1 - dx), max(0, y1 - dy), min(size[0], x2 + dx), min(size[1], y2 + dy))


def contains(outer: Sequence[float], inner: Sequence[float]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def _centre_dist(box: Sequence[float], target: Sequence[float]) -> float:
    return math.hypot((box[0] + box[2] - target[0] - target[2]) / 2, (box[1] + box[3] - target[1] - target[3]) / 2)


def zoom_factor(box: Sequence[int], long_side: int = 640) -> int:
    """Integer enlargement (2..12) bringing a crop's long side near `long_side` (never a no-op x1 resize)."""
    side = max(box[2] - box[0], box[3] - box[1], 1)
    return int(np.clip(round(long_side / side), 2, 12))


@dataclass
class SearchPlan:
    """Where a grid search goes for a target: the grid, the cell and sub-cell holding it, distractor cells, and
    the final zoom box (all in the coordinates of the searched image)."""

    rows: int
    cols: int
    cells: dict[str, Box]
    cell: str
    candidates: list[str]  # cells looked at in the candidates step, the target's cell among them
    cell_box: Box  # the target's cell widened by CANDIDATE_GROW
    sub_cells: dict[str, Box]  # the 3 x 3 sub-grid of cell_box
    sub: str | None  # the sub-cell holding the target (None: the widened cell is the final view)
    zoom_box: Box


def _grid_shapes(size: tuple[int, int]) -> list[tuple[int, int]]:
    w, h = size
    if w >= 1.3 * h:
        return [(3, 4), (2, 3), (1, 2)]
    if h >= 1.3 * w:
        return [(4, 3), (3, 2), (2, 1)]
    return [(3, 3), (2, 2)]


def plan_search(size: tuple[int, int], target: Sequence[float], rng: np.random.Generator, *, n_candidates: int = 2,
                distractors: Sequence[Sequence[float]] = ()) -> SearchPlan | None:
    """A grid search for `target` (a box) in an image of `size`; None when the target is too large for one (it
    does not fit inside any widened cell of even the coarsest grid, so it is plain to see without a search)."""
    for rows, cols in _grid_shapes(size):
        cells = grid(size, rows, cols)
        fits = [n for n, b in cells.items() if contains(grow(b, CANDIDATE_GROW, size), target)]
        if not fits:
            continue
        cell = min(fits, key=lambda n: _centre_dist(cells[n], target))
        cell_box = grow(cells[cell], CANDIDATE_GROW, size)
        if (cell_box[2] - cell_box[0]) * (cell_box[3] - cell_box[1]) > MAX_CROP_SHARE * size[0] * size[1]:
            continue  # a crop of most of the image is no zoom: no search for a target this large
        others = [n for n in cells if n != cell]
        picked: list[str] = []
        for d in distractors:  # cells holding look-alikes first
            n = min(others, key=lambda n: _centre_dist(cells[n], d))
            if n not in picked and _centre_dist(cells[n], d) < max(cells[n][2] - cells[n][0], 1):
                picked.append(n)
        rest = [n for n in others if n not in picked]
        rng.shuffle(rest)
        picked = (picked + rest)[: max(0, n_candidates - 1)]
        candidates = [*picked, cell]
        rng.shuffle(candidates)
        cw, ch = cell_box[2] - cell_box[0], cell_box[3] - cell_box[1]
        sub_cells = grid((cw, ch), *SUB_GRID, cell_box[0], cell_box[1], letters="abc")
        sub_fits = [n for n, b in sub_cells.items() if contains(grow(b, ZOOM_GROW, size), target)]
        if sub_fits:
            sub = min(sub_fits, key=lambda n: _centre_dist(sub_cells[n], target))
            zoom_box = grow(sub_cells[sub], ZOOM_GROW, size)
        else:
            sub, zoom_box = None, cell_box
        return SearchPlan(rows, cols, cells, cell, candidates, cell_box, sub_cells, sub, zoom_box)
    return None


# ---- the code the oracle writes ----------------------------------------------------------------------------------


def candidate_boxes(plan: SearchPlan, size: tuple[int, int]) -> dict[str, tuple[Box, dict[str, Box]]]:
    """For each candidate cell: its widened box and that box's sub-cells (what `candidates_code` prints)."""
    out = {}
    for n in plan.candidates:
        b = grow(plan.cells[n], CANDIDATE_GROW, size)
        out[n] = (b, grid((b[2] - b[0], b[3] - b[1]), *SUB_GRID, b[0], b[1], letters="abc"))
    return out


def candidates_k(plan: SearchPlan, size: tuple[int, int]) -> int:
    """The enlargement of the candidate views (widest near 900 px, 1..4)."""
    widest = max(max(b[2] - b[0], b[3] - b[1]) for b, _ in candidate_boxes(plan, size).values())
    return int(np.clip(round(900 / widest), 1, 4))


def compact_grid_code(src: str, rows: int, cols: int) -> str:
    """The grid in a few lines (no general helper): `cells` by name and `grow`, the same arithmetic as `grid` and
    `grow` here."""
    return "\n".join([
        f"W, H = {src}.size",
        f"cells = {{f\"{{'ABCDEFGH'[r]}}{{c + 1}}\": (c * W // {cols}, r * H // {rows}, (c + 1) * W // {cols}, "
        f"(r + 1) * H // {rows})",
        f"         for r in range({rows}) for c in range({cols})}}  # rows A.. from the top, columns 1.. from the left",
        "def grow(b, f, size):  # b widened by f of its width and height on every side, inside the image",
        "    dx, dy = int((b[2] - b[0]) * f), int((b[3] - b[1]) * f)",
        "    return (max(0, b[0] - dx), max(0, b[1] - dy), min(size[0], b[2] + dx), min(size[1], b[3] + dy))",
    ])


def candidates_code(src: str, plan: SearchPlan, size: tuple[int, int], *, helpers: bool = True,
                    sub_grids: bool = False) -> str:
    """Define the grid helpers and the grid, and show the candidate cells enlarged (with `sub_grids`: each with a
    labelled 3 x 3 sub-grid, whose boxes are printed, for a zoom into a sub-cell by its label)."""
    k = candidates_k(plan, size)
    lines = [*([GRID_HELPERS, ""] if helpers else []), *([WITH_GRID_HELPER, ""] if sub_grids else []),
             f"cells = grid({src}, {plan.rows}, {plan.cols})"]
    if sub_grids:
        return "\n".join([
            *lines, "sub = {}",
            f"for name in {list(plan.candidates)!r}:",
            f"    box = grow(cells[name], {CANDIDATE_GROW}, {src}.size)",
            f"    region = {src}.crop(box)",
            '    sub[name] = grid(region, 3, 3, box[0], box[1], letters="abc")',
            '    print(name, "widened to", box, "sub-cells:", sub[name])',
            f"    show(with_grid(region, sub[name], box[0], box[1], k={k}))",
        ])
    show = "show(region)" if k == 1 else \
        f"show(region.resize((region.width * {k}, region.height * {k}), Image.Resampling.LANCZOS))"
    return "\n".join([
        "from PIL import Image, ImageOps, ImageEnhance",
        compact_grid_code(src, plan.rows, plan.cols),
        f"for name in {list(plan.candidates)!r}:",
        f"    box = grow(cells[name], {CANDIDATE_GROW}, {src}.size)",
        f"    region = {src}.crop(box)",
        '    print(name, "widened to", box)',
        f"    {show}",
    ])


def view_reading(plan: SearchPlan, size: tuple[int, int], target: Sequence[float], rng: np.random.Generator
                 ) -> Box:
    """Where the target is in the enlarged view of its candidate cell, as a model that sees it there would say:
    the target's box in the view's pixels, padded by 15-50% of its width and height (ints; inside the view)."""
    b, _ = candidate_boxes(plan, size)[plan.cell]
    k = candidates_k(plan, size)
    vx1, vy1, vx2, vy2 = ((target[0] - b[0]) * k, (target[1] - b[1]) * k, (target[2] - b[0]) * k,
                          (target[3] - b[1]) * k)
    f = float(rng.uniform(0.15, 0.5))
    px, py = max(3.0, f * (vx2 - vx1)), max(3.0, f * (vy2 - vy1))
    vw, vh = (b[2] - b[0]) * k, (b[3] - b[1]) * k
    return (max(0, math.floor(vx1 - px)), max(0, math.floor(vy1 - py)), min(vw - 1, math.ceil(vx2 + px)),
            min(vh - 1, math.ceil(vy2 + py)))


def reading_box(plan: SearchPlan, size: tuple[int, int], reading: Sequence[int]) -> Box:
    """The image box `reading_code` crops for a reading in the candidate view."""
    b, _ = candidate_boxes(plan, size)[plan.cell]
    k = candidates_k(plan, size)
    a, bb, c, d = reading
    return (b[0] + a // k, b[1] + bb // k, min(size[0], b[0] + c // k + 1), min(size[1], b[1] + d // k + 1))


def reading_code(src: str, plan: SearchPlan, size: tuple[int, int], reading: Sequence[int], *,
                 out: str = "detail", enhance: bool = False) -> str:
    """Crop what a reading in the candidate view points at (converted back to image pixels) and enlarge it."""
    k = candidates_k(plan, size)
    box = reading_box(plan, size, reading)
    z = zoom_factor(box, 480)
    conv = "" if k == 1 else f" // {k}"
    lines = [f'x0, y0 = grow(cells["{plan.cell}"], {CANDIDATE_GROW}, {src}.size)[:2]',
             f"a, b, c, d = {tuple(int(v) for v in reading)}  # in the enlarged view of {plan.cell}",
             f"box = (x0 + a{conv}, y0 + b{conv}, min({src}.width, x0 + c{conv} + 1), "
             f"min({src}.height, y0 + d{conv} + 1))",
             'print("crop box:", box)', f"{out} = {src}.crop(box)",
             f"{out} = {out}.resize(({out}.width * {z}, {out}.height * {z}), Image.Resampling.LANCZOS)"]
    if enhance:
        lines += [f"{out} = ImageEnhance.Contrast({out}).enhance(1.6)",
                  f"{out} = ImageEnhance.Sharpness({out}).enhance(2.0)"]
    lines.append(f"show({out})")
    return "\n".join(lines)


def cell_zoom_code(src: str, plan: SearchPlan, size: tuple[int, int]) -> str:
    """Define the helpers and the grid, then crop the target's cell (widened) and enlarge it."""
    return "\n".join([compact_grid_code(src, plan.rows, plan.cols), zoom_code(src, plan, size, plan.cell, None)])


def position_words(plan: SearchPlan, cell: str) -> str:
    """Where a cell lies in the image, in words ("upper left", "middle", "lower right")."""
    r, c = "ABCDEFGH".index(cell[0]), int(cell[1:]) - 1
    row = "upper" if r < plan.rows / 3 - 1e-9 else "lower" if r >= plan.rows * 2 / 3 - 1e-9 and plan.rows > 1 else ""
    col = "left" if c < plan.cols / 3 - 1e-9 else "right" if c >= plan.cols * 2 / 3 - 1e-9 and plan.cols > 1 else ""
    if plan.rows == 2:
        row = "upper" if r == 0 else "lower"
    if plan.cols == 2:
        col = "left" if c == 0 else "right"
    return " ".join(w for w in (row, col) if w) or "middle"


def zoom_box(plan: SearchPlan, size: tuple[int, int], cell: str, sub: str | None) -> Box:
    """The box `zoom_code` crops for (cell, sub-cell) (sub None: the whole widened cell)."""
    box, subs = candidate_boxes(plan, size)[cell]
    return grow(subs[sub], ZOOM_GROW, size) if sub is not None else box


def zoom_code(src: str, plan: SearchPlan, size: tuple[int, int], cell: str, sub: str | None, *, out: str = "detail",
              enhance: bool = False) -> str:
    """Crop (cell, sub-cell) widened by ZOOM_GROW (or the whole widened cell) and enlarge it."""
    pick = (f'grow(sub["{cell}"]["{sub}"], {ZOOM_GROW}, {src}.size)' if sub is not None
            else f'grow(cells["{cell}"], {CANDIDATE_GROW}, {src}.size)')
    k = zoom_factor(zoom_box(plan, size, cell, sub))
    lines = [f"box = {pick}", 'print("zoom box:", box)', f"{out} = {src}.crop(box)",
             f"{out} = {out}.resize(({out}.width * {k}, {out}.height * {k}), Image.Resampling.LANCZOS)"]
    if enhance:
        lines += [f"{out} = ImageEnhance.Contrast({out}).enhance(1.6)",
                  f"{out} = ImageEnhance.Sharpness({out}).enhance(2.0)"]
    lines.append(f"show({out})")
    return "\n".join(lines)
