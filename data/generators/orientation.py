"""Orientation tasks (OCRBench-transformed style): text rendered on a varied background, then rotated or mirrored.

The question can only be answered by reading the text, so a solver that does not undo the transform has to read
sideways, upside-down or mirrored text. The required op is the inverse of the transform
(`data.orientation.inverse`): an image the generator rotated 90 degrees counter-clockwise (`rotate90`) lists
`rotate270`. A share of tasks is left untransformed (`transforms` includes `none`; required ops empty), as in the
benchmark's "original" split, which also gives the no-tool oracle variant something honest to do.

Question kinds:
- `word`: "What is written in the image?" - one word or a non-semantic string (text answer);
- `line`: a few lines; "What is written on line k (counting from the top)?" (text answer; evidence = that line);
- `number`: a label such as "ROOM 214" among other lines; "What number follows ROOM?" (number answer);
- `choice`: "Which word is written in the image?" with four options (choice answer).

Ground truth in `Sample.debug`: the upright image, the background before the text, the ink mask and text box in
upright coordinates, the transform. Evidence boxes are in the coordinates of the image as given (transformed).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from data.backgrounds import BACKGROUND_KINDS, background, contrasting_colour, luminance
from data.fonts import font_name, get_font
from data.generators.base import Generator, GeneratorConfig, Sample
from data.orientation import ORIENTATION_OPS, apply_op_pil, inverse, map_box
from data.question_text import letter, with_choices
from data.text_layer import draw_lines, measure
from data.vocabulary import random_string, random_word, styled

QUESTION_KINDS: tuple[str, ...] = ("word", "line", "number", "choice")
TRANSFORMS: tuple[str, ...] = ("none", *ORIENTATION_OPS)
LABELS = ("ROOM", "GATE", "PRICE", "NO.", "TOTAL", "LOT", "SEAT", "CODE", "UNIT", "PLATFORM")
ORDINALS = ("first", "second", "third", "fourth")


class OrientationConfig(GeneratorConfig):
    min_side: int = Field(320, ge=64, description="shorter side of the upright image, at least")
    max_side: int = Field(960, ge=64, description="longer side of the upright image, at most")
    transforms: list[str] = Field(default_factory=lambda: list(TRANSFORMS),
                                  description=f"drawn uniformly; any of {', '.join(TRANSFORMS)}")
    question_kinds: list[str] = Field(default_factory=lambda: list(QUESTION_KINDS))
    backgrounds: list[str] = Field(default_factory=lambda: list(BACKGROUND_KINDS))
    nonsense_share: float = Field(0.3, ge=0, le=1, description="share of `word` tasks with a random string")


class OrientationGenerator(Generator):
    name: ClassVar[str] = "orientation"
    description: ClassVar[str] = "text on varied backgrounds, rotated 90/180/270 or flipped; read the text"
    Config = OrientationConfig
    config: OrientationConfig

    def __init__(self, config: OrientationConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        c = self.config
        for t in c.transforms:
            if t not in TRANSFORMS:
                raise ValueError(f"orientation: unknown transform {t!r}; valid: {', '.join(TRANSFORMS)}")
        for k in c.question_kinds:
            if k not in QUESTION_KINDS:
                raise ValueError(f"orientation: unknown question kind {k!r}; valid: {', '.join(QUESTION_KINDS)}")
        for b in c.backgrounds:
            if b not in BACKGROUND_KINDS:
                raise ValueError(f"orientation: unknown background {b!r}; valid: {', '.join(BACKGROUND_KINDS)}")
        if not (c.transforms and c.question_kinds and c.backgrounds):
            raise ValueError("orientation: transforms, question_kinds and backgrounds must not be empty")
        if c.min_side > c.max_side:
            raise ValueError(f"orientation: min_side {c.min_side} > max_side {c.max_side}")

    # ---- content --------------------------------------------------------------------------------------------

    def _content(self, rng: np.random.Generator, kind: str) -> tuple[list[str], int, str, Any, str, list[str] | None]:
        """(lines, index of the evidence line or -1 for all, question, answer, answer_type, choices)."""
        if kind == "word":
            text = (random_string(rng, int(rng.integers(4, 9))) if rng.random() < self.config.nonsense_share
                    else styled(rng, random_word(rng)))
            q = ["What is written in the image?", "What word is shown in the image?",
                 "Read the text in the image. What does it say?"][int(rng.integers(3))]
            return [text], -1, q, text, "text", None
        if kind == "line":
            n = int(rng.integers(2, 5))
            lines = [" ".join(styled(rng, random_word(rng)) for _ in range(int(rng.integers(1, 3)))) for _ in range(n)]
            while len(set(lines)) < n:
                lines = [ln + " " + random_word(rng) if lines.count(ln) > 1 else ln for ln in lines]
            k = int(rng.integers(n))
            q = f"What is written on the {ORDINALS[k]} line of text, counting from the top of the text as it is meant to be read?"
            return lines, k, q, lines[k], "text", None
        if kind == "number":
            labels = [str(v) for v in rng.choice(LABELS, size=int(rng.integers(2, 4)), replace=False)]
            values = []
            for lab in labels:
                values.append(f"{rng.integers(1, 999)}.{rng.integers(0, 100):02d}" if lab in ("PRICE", "TOTAL")
                              else str(int(rng.integers(1, 9999))))
            lines = [f"{lab} {v}" for lab, v in zip(labels, values, strict=True)]
            k = int(rng.integers(len(lines)))
            q = f"What number is written after {labels[k]}? Answer with the number only."
            return lines, k, q, float(values[k]), "number", None
        words = set()  # type: ignore[var-annotated]
        while len(words) < 4:
            words.add(random_word(rng))
        options = sorted(words)
        rng.shuffle(options)
        correct = int(rng.integers(4))
        shown = styled(rng, options[correct])
        q = with_choices("Which word is written in the image?", options)
        return [shown], -1, q, letter(correct), "choice", list(options)

    # ---- rendering ------------------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, index: int) -> Sample:
        c = self.config
        kind = c.question_kinds[int(rng.integers(len(c.question_kinds)))]
        transform = c.transforms[int(rng.integers(len(c.transforms)))]
        lines, ev_line, question, answer, answer_type, choices = self._content(rng, kind)

        long_side = int(rng.integers(max(c.min_side, min(c.max_side, 400)), c.max_side + 1))
        aspect = float(rng.uniform(0.6, 1.0))
        short_side = max(c.min_side, int(long_side * aspect))
        size = (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)
        w, h = size
        bg_kind = c.backgrounds[int(rng.integers(len(c.backgrounds)))]
        bg, dominant = background(rng, size, bg_kind)
        colour = contrasting_colour(rng, dominant)
        stroke = int(rng.integers(0, 3)) if bg_kind in ("noise", "blobs", "stripes", "checker", "gradient") else 0
        stroke_fill = (255, 255, 255) if luminance(colour) < 128 else (0, 0, 0)
        font_choice = int(rng.integers(1 << 16))

        # Largest font (within a random share of the image) that fits the block.
        spacing = int(rng.integers(2, 12))
        target_h = h * float(rng.uniform(0.12, 0.35)) / max(1, len(lines)) * (1.6 if len(lines) == 1 else 1.0)
        size_px = max(10, int(target_h))
        while True:
            font = get_font(size_px, c.font_files, font_choice)
            bw, bh = measure(lines, font, spacing=spacing, stroke=stroke)
            if (bw <= 0.9 * w and bh <= 0.9 * h) or size_px <= 10:
                break
            size_px = max(10, int(size_px * 0.85))
        x0 = int(rng.integers(0, max(1, w - bw)))
        y0 = int(rng.integers(0, max(1, h - bh)))
        text = draw_lines(size, lines, font, (x0, y0), fill=colour, stroke=stroke, stroke_fill=stroke_fill,
                          spacing=spacing)
        upright = text.composite(bg)
        up_box = text.box if ev_line < 0 else text.line_boxes[ev_line]

        if transform == "none":
            given, box, required = upright, up_box, []
        else:
            given = apply_op_pil(upright, transform)
            box = tuple(int(v) for v in map_box(up_box, transform, size))  # type: ignore[assignment]
            required = [inverse(transform)]
        if ev_line < 0:
            label = "the text"
        elif kind == "number":
            label = f"the line with {lines[ev_line].split()[0]}"
        else:
            label = f"the {ORDINALS[ev_line]} line of text"
        return Sample(
            images=[given], question=question, answer=answer, answer_type=answer_type, choices=choices,
            evidence=[{"box": list(box), "image": 0, "label": label}], required_ops=required,
            metadata={"task_type": "orientation", "question_kind": kind, "referent": label, "transform": transform,
                      "text_lines": lines, "evidence_line": ev_line, "font": font_name(c.font_files, font_choice),
                      "font_size": size_px, "background": bg_kind},
            debug={"upright": upright, "background": bg, "ink_mask": text.mask(), "text_box_upright": up_box,
                   "all_text_box_upright": text.box, "transform": transform},
        )
