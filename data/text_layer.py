"""Text drawn on its own transparent layer, so that the pixels it covers (and their box) are known exactly.

Generators composite the layer over a background. The layer's alpha is the text's ink mask: the evidence box of a
text target is the bounding box of that alpha (tight, in pixels), not a font-metrics estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]


@dataclass
class TextLayer:
    layer: Image.Image  # RGBA, transparent where there is no ink
    line_boxes: list[Box]  # ink box of each line, (x1, y1, x2, y2), x2/y2 exclusive

    @property
    def box(self) -> Box:
        xs1, ys1, xs2, ys2 = zip(*self.line_boxes, strict=True)
        return min(xs1), min(ys1), max(xs2), max(ys2)

    def mask(self) -> np.ndarray:
        return np.asarray(self.layer.getchannel("A")) > 0

    def composite(self, background: Image.Image) -> Image.Image:
        return Image.alpha_composite(background.convert("RGBA"), self.layer).convert("RGB")


def measure(lines: Sequence[str], font: Any, *, spacing: int, stroke: int = 0) -> tuple[int, int]:
    """(width, height) of the text block, as `draw_lines` lays it out."""
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    w = h = 0
    for i, line in enumerate(lines):
        x1, y1, x2, y2 = probe.textbbox((0, 0), line, font=font, stroke_width=stroke)
        w = max(w, x2)  # type: ignore[assignment]
        h += (y2 if i == len(lines) - 1 else _line_height(font, stroke) + spacing)  # type: ignore[assignment]
    return w, h


def _line_height(font: Any, stroke: int) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent + 2 * stroke


def draw_lines(size: tuple[int, int], lines: Sequence[str], font: Any, origin: tuple[int, int], *,
               fill: tuple[int, int, int], stroke: int = 0, stroke_fill: tuple[int, int, int] | None = None,
               spacing: int = 4) -> TextLayer:
    """Draw `lines` top to bottom from `origin` on a transparent layer of `size`; returns the layer and each line's
    tight ink box."""
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    x, y = origin
    boxes: list[Box] = []
    for line in lines:
        single = Image.new("L", size, 0)
        ImageDraw.Draw(single).text((x, y), line, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
        bb = single.getbbox()
        if bb is None:
            raise ValueError(f"text {line!r} drew no pixels at {origin} in an image of {size}")
        boxes.append(bb)
        d.text((x, y), line, font=font, fill=(*fill, 255), stroke_width=stroke,
               stroke_fill=(*(stroke_fill or fill), 255))
        y += _line_height(font, stroke) + spacing
    return TextLayer(layer, boxes)
