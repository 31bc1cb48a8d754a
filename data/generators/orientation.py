"""Orientation tasks (OCRBench-transformed style): text rendered on a varied background, then rotated or mirrored.

The question can only be answered by reading the text, so a solver that does not undo the transform has to read
sideways, upside-down or mirrored text. The required op is the inverse of the transform
(`data.orientation.inverse`): an image the generator rotated 90 degrees counter-clockwise (`rotate90`) lists
`rotate270`. A share of tasks is left untransformed (`transforms` includes `none`; required ops empty), as in the
benchmark's "original" split, which also gives the no-tool oracle variant something honest to do.

Question kinds:
- `word`: "What is written in the image?" - one word or a non-semantic string (text answer);
- `line`: a few lines; "What is written on line k (counting from the top)?" (text answer; evidence = that line);
- `number`: labelled values among other lines. Prices ("PRICE 12.50") are numbers ("What number is written after
  PRICE?", number answer); the other labels carry 4-digit codes ("ROOM 0427"), which are exact text answers
  (`metadata["exact_text"]`: "0427" is not 427, and "427" is wrong);
- `choice`: "Which word is written in the image?" with four options that share letters with the answer (same first
  letter, length, many letters in common), so a blurry glimpse of the word's shape does not pick it (choice answer).

Items that would read the same without undoing the transform ("OTTO" mirrored left-right, "BOX" flipped top-bottom,
"SOS" turned half-way: `data.vocabulary.readable_without_fix`) are redrawn, so every transformed item tests it.

Text size is decided against the model's input resolution (`max_pixels`, `data.resolution`): most items have text
that is legible in the input as the processor resizes it; a share (`small_text_share`) puts small text on a large
image, legible in the file but under `LEGIBLE_PX` after the resize, so reading it needs a crop too (`crop` is then a
required op, after the orientation fix). Every item records `glyph_px` (the height of a capital letter in the file)
and `legible_at_input`. Fonts cycle through Pillow's and matplotlib's bundled open fonts (`data.fonts`).

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
from data.resolution import DEFAULT_MAX_PIXELS, LEGIBLE_PX, legible, model_scale
from data.text_layer import draw_lines, measure
from data.vocabulary import random_string, random_word, readable_without_fix, similar_words, styled

QUESTION_KINDS: tuple[str, ...] = ("word", "line", "number", "choice")
TRANSFORMS: tuple[str, ...] = ("none", *ORIENTATION_OPS)
LABELS = ("ROOM", "GATE", "PRICE", "NO.", "TOTAL", "LOT", "SEAT", "CODE", "UNIT", "PLATFORM")
PRICE_LABELS = ("PRICE", "TOTAL")
ORDINALS = ("first", "second", "third", "fourth")


class OrientationConfig(GeneratorConfig):
    min_side: int = Field(320, ge=64, description="shorter side of the upright image, at least")
    max_side: int = Field(960, ge=64, description="longer side of the upright image, at most")
    transforms: list[str] = Field(default_factory=lambda: list(TRANSFORMS),
                                  description=f"drawn uniformly; any of {', '.join(TRANSFORMS)}")
    question_kinds: list[str] = Field(default_factory=lambda: list(QUESTION_KINDS))
    backgrounds: list[str] = Field(default_factory=lambda: list(BACKGROUND_KINDS))
    nonsense_share: float = Field(0.3, ge=0, le=1, description="share of `word` tasks with a random string")
    small_text_share: float = Field(0.2, ge=0, le=1, description="share of tasks whose text is too small to read at "
                                                                  "max_pixels (they also require a crop)")
    small_min_side: int = Field(1400, ge=256, description="longer side of images with small text, at least")
    small_max_side: int = Field(2200, ge=256, description="longer side of images with small text, at most")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=28 * 28, description="the model's input resolution (processor "
                                                                        "max_pixels) that decides legibility")


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
                values.append(f"{rng.integers(1, 999)}.{rng.integers(0, 100):02d}" if lab in PRICE_LABELS
                              else f"{int(rng.integers(0, 10000)):04d}")
            lines = [f"{lab} {v}" for lab, v in zip(labels, values, strict=True)]
            k = int(rng.integers(len(lines)))
            if labels[k] in PRICE_LABELS:
                q = f"What number is written after {labels[k]}? Answer with the number only."
                return lines, k, q, float(values[k]), "number", None
            q = f"What is the code written after {labels[k]}? Answer with the four digits exactly as written."
            return lines, k, q, values[k], "text", None
        correct_word = random_word(rng)
        options = [correct_word, *similar_words(rng, correct_word, 3)]
        rng.shuffle(options)
        correct = options.index(correct_word)
        shown = styled(rng, options[correct])
        q = with_choices("Which word is written in the image?", options)
        return [shown], -1, q, letter(correct), "choice", list(options)

    # ---- rendering ------------------------------------------------------------------------------------------

    def _layout(self, rng: np.random.Generator, small: bool) -> tuple[int, int]:
        """(width, height) of the upright image."""
        c = self.config
        if small:
            long_side = int(rng.integers(c.small_min_side, max(c.small_min_side, c.small_max_side) + 1))
        else:
            long_side = int(rng.integers(max(c.min_side, min(c.max_side, 400)), c.max_side + 1))
        aspect = float(rng.uniform(0.6, 1.0))
        short_side = max(c.min_side, int(long_side * aspect))
        return (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)

    def sample(self, rng: np.random.Generator, index: int) -> Sample:
        c = self.config
        kind = c.question_kinds[int(rng.integers(len(c.question_kinds)))]
        transform = c.transforms[int(rng.integers(len(c.transforms)))]
        for _attempt in range(50):  # redraw text that would read the same without undoing the transform
            lines, ev_line, question, answer, answer_type, choices = self._content(rng, kind)
            asked = lines if ev_line < 0 else [lines[ev_line]]
            if transform == "none" or not any(readable_without_fix(t, transform) for t in asked):
                break
        small = bool(rng.random() < c.small_text_share)
        size = self._layout(rng, small)
        w, h = size
        bg_kind = c.backgrounds[int(rng.integers(len(c.backgrounds)))]
        bg, dominant = background(rng, size, bg_kind)
        colour = contrasting_colour(rng, dominant)
        stroke = int(rng.integers(0, 3)) if bg_kind in ("noise", "blobs", "stripes", "checker", "gradient") else 0
        stroke_fill = (255, 255, 255) if luminance(colour) < 128 else (0, 0, 0)
        font_choice = int(rng.integers(1 << 16))
        spacing = int(rng.integers(2, 12))
        scale = model_scale(size, c.max_pixels)

        if small:  # capital letters 4-8 px tall after the resize, at least 9 px in the file (a crop reads them)
            seen = float(rng.uniform(4.0, LEGIBLE_PX - 2.0))
            size_px = max(13, int(round(seen / scale / 0.72)))
        else:  # largest font (within a random share of the image) that fits the block
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

        glyph_px = _cap_height(font)
        readable = legible(glyph_px, size, c.max_pixels)
        if transform == "none":
            given, box, required = upright, up_box, []
        else:
            given = apply_op_pil(upright, transform)
            box = tuple(int(v) for v in map_box(up_box, transform, size))  # type: ignore[assignment]
            required = [inverse(transform)]
        if not readable:
            required = [*required, "crop"]
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
                      "font_size": size_px, "glyph_px": glyph_px, "legible_at_input": readable,
                      "seen_glyph_px": round(glyph_px * scale, 2), "max_pixels": c.max_pixels, "small_text": small,
                      "background": bg_kind,
                      **({"exact_text": True} if kind == "number" and answer_type == "text" else {})},
            debug={"upright": upright, "background": bg, "ink_mask": text.mask(), "text_box_upright": up_box,
                   "all_text_box_upright": text.box, "transform": transform},
        )


def _cap_height(font: Any) -> int:
    """Height in pixels of a capital letter in `font` (what decides whether text can be read)."""
    x1, y1, x2, y2 = font.getbbox("H")
    return int(y2 - y1)
