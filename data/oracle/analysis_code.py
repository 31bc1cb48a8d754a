"""Analysis code for the symbolic tasks: what an oracle writes to measure the answer from the pixels.

Each function returns a code block that runs in the sandbox on the input image (variable `var`) and prints the
quantity the question asks for; the generators draw in exact colours without anti-aliasing and keep clear gaps, so
these measurements are exact (tests run them on many generated images and compare with the ground truth). They are
the "tool" of the symbolic tasks: colour masks, connected components, column scans.
"""

from __future__ import annotations

from rollout.task import Task


def colour_listing_code(var: str) -> str:
    """Print the colours an image uses, most frequent first (the step before a colour mask: the mask's exact RGB is
    then read from this output, not assumed)."""
    return f"""import numpy as np
arr = np.array({var}.convert("RGB")).reshape(-1, 3)
colours, counts = np.unique(arr, axis=0, return_counts=True)
for i in np.argsort(-counts)[:12]:
    print(tuple(colours[i].tolist()), "pixels:", int(counts[i]))"""


def _counting(task: Task, var: str) -> str:
    r, g, b = task.metadata["target_rgb"]
    colour, shape = task.metadata["target_colour"], task.metadata["target_shape"]
    return f"""import numpy as np, cv2
arr = np.array({var}.convert("RGB")).astype(int)
# pixels close to the {colour} of the {shape}s
mask = (np.abs(arr - np.array([{r}, {g}, {b}])).sum(axis=-1) < 60).astype(np.uint8)
n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
areas = stats[1:, cv2.CC_STAT_AREA]
print("{colour} blobs:", int((areas >= 30).sum()), "areas:", sorted(areas.tolist()))"""


def _line_intersections(task: Task, var: str) -> str:
    return f"""import numpy as np
arr = np.array({var}.convert("RGB")).astype(int)
blue = (arr[..., 2] > 180) & (arr[..., 0] < 90) & (arr[..., 1] < 90)
red = (arr[..., 0] > 180) & (arr[..., 1] < 90) & (arr[..., 2] < 90)
signs = []
for x in range(arr.shape[1]):
    yb, yr = np.flatnonzero(blue[:, x]), np.flatnonzero(red[:, x])
    if len(yb) and len(yr) and abs(yb.mean() - yr.mean()) > 6:
        signs.append(np.sign(yb.mean() - yr.mean()))
print("columns with both lines:", len(signs))
print("sign changes of (blue - red):", int(np.sum(np.diff(signs) != 0)))"""


def _touching_circles(task: Task, var: str) -> str:
    return f"""import numpy as np, cv2
ink = (np.array({var}.convert("L")) < 200).astype(np.uint8)
n, _ = cv2.connectedComponents(ink, connectivity=8)
print("separate drawn parts:", n - 1)"""


def _overlapping_circles(task: Task, var: str) -> str:
    return f"""import numpy as np
arr = np.array({var}.convert("RGB")).reshape(-1, 3)
colours, counts = np.unique(arr, axis=0, return_counts=True)
rings = [tuple(c) for c, k in zip(colours.tolist(), counts.tolist()) if tuple(c) != (255, 255, 255) and k >= 100]
print("ring colours:", len(rings), rings)"""


def _nested_squares(task: Task, var: str) -> str:
    return f"""import numpy as np, cv2
ink = (np.array({var}.convert("L")) < 200).astype(np.uint8)
n, _ = cv2.connectedComponents(ink, connectivity=8)
print("separate outlines:", n - 1)"""


_CODE = {
    "counting": _counting,
    "line_intersections": _line_intersections,
    "touching_circles": _touching_circles,
    "overlapping_circles": _overlapping_circles,
    "nested_squares": _nested_squares,
}

# What the measurement says, for the text after the observation.
FINDING = {
    "counting": "The colour mask has {answer} separate blobs of the asked colour, so there are {answer}.",
    "line_intersections": "The sign of the vertical gap between the lines changes {answer} time(s), so they cross {answer} time(s).",
    "touching_circles": "The outlines form {parts} connected part(s), so the answer is {answer}.",
    "overlapping_circles": "There are {answer} distinct ring colours, one per circle, so there are {answer} circles.",
    "nested_squares": "There are {answer} separate outlines, one per square.",
}


def analysis_code(task: Task, var: str) -> str:
    kind = task.metadata.get("symbolic_kind")
    try:
        return _CODE[kind](task, var)  # type: ignore[index]
    except KeyError:
        raise ValueError(f"no analysis code for symbolic kind {kind!r}; known: {', '.join(_CODE)}") from None
