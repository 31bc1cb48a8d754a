"""Visual search tasks (V* style): one tiny target in a large cluttered scene, and a question only it answers.

The scene (`data.backgrounds.cluttered_scene`, styles `shapes`, `blocks`, `texture`, `landscape`) is muted clutter
with a few saturated look-alikes (`distractors`: objects that share the target's colour or kind but not both, so the
target does not pop out by colour alone and finding it means checking candidates); the target is drawn last so
nothing covers it. Its box (the evidence) covers between `min_area_frac` and `max_area_frac` of the image (default
0.002% to 0.01%, CodeVision's scale). Target kinds and their questions (several phrasings each):

- `shape`: a saturated star / triangle / diamond / cross. "What is the colour of the small star?" or "What shape is
  the small red object?" (four options);
- `glyph`: a saturated disc with one character. "What character is written inside the small blue circle?" (text);
- `text`: a tiny white sign with a coloured border and a 3-5 character code. "What is written on the small sign
  with the green border?" (text).

Targets that carry characters get a legible minimum size (a character needs ~11 pixels of height to be read at all
after cropping), so for them the area share is raised to what that needs when the sampled share is smaller.

Tasks are made against the model's input resolution (`max_pixels`, `data.resolution`): `metadata["target_seen_px"]`
is the size that decides recognition (glyph height for characters, the side for shapes) after the processor's
resize, and `metadata["legible_at_input"]` whether it reaches `LEGIBLE_PX`. With `require_crop` (default) a target
that would be legible without a crop is drawn again smaller, so every task needs its crop.

Ground truth in `Sample.debug`: the target's pixel mask over the whole image and the patch that was pasted. The
evidence box is the tight box of that mask (x2/y2 exclusive); the distractors' boxes are in
`metadata["distractor_boxes"]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw
from pydantic import Field

from data.backgrounds import CLUTTER_STYLES, cluttered_scene
from data.fonts import get_font
from data.generators.base import Generator, GeneratorConfig, Sample
from data.question_text import letter, with_choices
from data.resolution import DEFAULT_MAX_PIXELS, LEGIBLE_PX, model_scale
from data.vocabulary import GLYPH_CHARS, asymmetric_string

TARGET_KINDS: tuple[str, ...] = ("shape", "glyph", "text")
SHAPES: tuple[str, ...] = ("star", "triangle", "diamond", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 70, 230), "yellow": (245, 210, 20),
    "orange": (245, 130, 20), "purple": (150, 40, 200), "magenta": (230, 40, 180), "cyan": (20, 200, 220),
}
MIN_CHAR_PX = 11  # smallest character height (pixels) that can still be read after cropping and enlarging


class VisualSearchConfig(GeneratorConfig):
    min_side: int = Field(1600, ge=256, description="shorter image side, at least")
    max_side: int = Field(3200, ge=256, description="longer image side, at most")
    min_area_frac: float = Field(2e-5, gt=0, lt=1, description="target box area / image area, at least")
    max_area_frac: float = Field(1e-4, gt=0, lt=1, description="target box area / image area, at most")
    target_kinds: list[str] = Field(default_factory=lambda: list(TARGET_KINDS))
    clutter_density: float = Field(1.0, ge=0, le=5)
    clutter_styles: list[str] = Field(default_factory=lambda: ["shapes", "blocks", "texture"],
                                      description=f"drawn uniformly; any of {', '.join(CLUTTER_STYLES)}")
    min_distractors: int = Field(2, ge=0, description="saturated look-alikes per scene, at least")
    max_distractors: int = Field(5, ge=0, description="saturated look-alikes per scene, at most")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=28 * 28, description="the model's input resolution (processor "
                                                                        "max_pixels) that decides legibility")
    require_crop: bool = Field(True, description="redraw targets that are legible without a crop at max_pixels")


@dataclass
class Target:
    """A rendered target: an RGBA patch (alpha = the target's pixels) and what the question asks about it."""

    patch: Image.Image
    question: str
    answer: Any
    answer_type: str
    choices: list[str] | None
    referent: str  # how the question names the target ("the small star"); never contains the answer
    info: dict[str, Any]


def _shape_polygon(shape: str, s: int) -> list[tuple[float, float]]:
    """The outline of `shape` filling an s x s box (coordinates inside [0, s-1])."""
    m = s - 1
    c = m / 2
    if shape == "triangle":
        return [(c, 0), (m, m), (0, m)]
    if shape == "diamond":
        return [(c, 0), (m, c), (c, m), (0, c)]
    if shape == "cross":
        t = m / 3
        return [(t, 0), (2 * t, 0), (2 * t, t), (m, t), (m, 2 * t), (2 * t, 2 * t), (2 * t, m), (t, m), (t, 2 * t),
                (0, 2 * t), (0, t), (t, t)]
    # five-pointed star, points up; stretched to touch all four sides of the box
    pts = []
    for k in range(10):
        r = 1.0 if k % 2 == 0 else 0.45
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((math.cos(a) * r, math.sin(a) * r))
    xs, ys = zip(*pts, strict=True)
    return [((x - min(xs)) / (max(xs) - min(xs)) * m, (y - min(ys)) / (max(ys) - min(ys)) * m) for x, y in pts]


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


class VisualSearchGenerator(Generator):
    name: ClassVar[str] = "visual_search"
    description: ClassVar[str] = "a tiny target (0.01%-0.1% of the area) in a large cluttered scene; crop to answer"
    Config = VisualSearchConfig
    config: VisualSearchConfig

    def __init__(self, config: VisualSearchConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        c = self.config
        for k in c.target_kinds:
            if k not in TARGET_KINDS:
                raise ValueError(f"{self.name}: unknown target kind {k!r}; valid: {', '.join(TARGET_KINDS)}")
        if not c.target_kinds:
            raise ValueError(f"{self.name}: target_kinds must not be empty")
        if c.min_area_frac > c.max_area_frac:
            raise ValueError(f"{self.name}: min_area_frac {c.min_area_frac} > max_area_frac {c.max_area_frac}")
        if c.min_side > c.max_side:
            raise ValueError(f"{self.name}: min_side {c.min_side} > max_side {c.max_side}")
        for st in c.clutter_styles:
            if st not in CLUTTER_STYLES:
                raise ValueError(f"{self.name}: unknown clutter style {st!r}; valid: {', '.join(CLUTTER_STYLES)}")
        if not c.clutter_styles:
            raise ValueError(f"{self.name}: clutter_styles must not be empty")
        if c.min_distractors > c.max_distractors:
            raise ValueError(f"{self.name}: min_distractors {c.min_distractors} > max_distractors {c.max_distractors}")

    # ---- targets --------------------------------------------------------------------------------------------

    def _colour(self, rng: np.random.Generator) -> tuple[str, tuple[int, int, int]]:
        name = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        return name, COLOURS[name]

    def _shape_target(self, rng: np.random.Generator, side: int) -> Target:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        cname, colour = self._colour(rng)
        patch = _shape_patch(shape, colour, side)
        if rng.random() < 0.5:
            options = [cname, *rng.choice([c for c in COLOURS if c != cname], size=3, replace=False).tolist()]
            rng.shuffle(options)
            q = with_choices(_pick(rng, [f"What is the colour of the small {shape} in the image?",
                                         f"What colour is the tiny {shape}?",
                                         f"Which colour does the small {shape} have?"]), options)
            return Target(patch, q, letter(options.index(cname)), "choice", options, f"the small {shape}",
                          {"shape": shape, "colour": cname, "asks": "colour", "seen_basis_px": side})
        options = list(SHAPES)
        rng.shuffle(options)
        q = with_choices(_pick(rng, [f"What shape is the small {cname} object in the image?",
                                     f"Which shape is the tiny {cname} object?",
                                     f"What is the shape of the small {cname} object?"]), options)
        return Target(patch, q, letter(options.index(shape)), "choice", options, f"the small {cname} object",
                      {"shape": shape, "colour": cname, "asks": "shape", "seen_basis_px": side})

    def _glyph_target(self, rng: np.random.Generator, side: int, chars: str = GLYPH_CHARS) -> Target:
        side = max(side, int(MIN_CHAR_PX / 0.62) + 2)
        ch = chars[int(rng.integers(len(chars)))]
        cname, _colour = self._colour(rng)
        patch = _glyph_patch(ch, cname, side, self.config.font_files)
        q = _pick(rng, [f"What character is written inside the small {cname} circle in the image?",
                        f"Which letter or digit is printed on the tiny {cname} circle?",
                        f"Read the character on the small {cname} circle."]) + " Answer with the character only."
        return Target(patch, q, ch, "text", None, f"the small {cname} circle",
                      {"char": ch, "colour": cname, "asks": "char", "char_px": int(side * 0.75 * 0.72),
                       "seen_basis_px": int(side * 0.75 * 0.72)})

    def _text_target(self, rng: np.random.Generator, side: int, text: str | None = None) -> Target:
        text = text or asymmetric_string(rng, int(rng.integers(3, 6)))
        cname, _colour = self._colour(rng)
        # Sign area ~ 0.62 * len * char_h**2 * 1.6 (glyph widths, padding): keep it near side**2, but legible.
        char_h = max(MIN_CHAR_PX, int(side / math.sqrt(0.62 * len(text) * 1.6)))
        patch = _sign_patch(text, cname, char_h, self.config.font_files)
        q = _pick(rng, [f"What is written on the small sign with the {cname} border in the image?",
                        f"What code is on the tiny sign with the {cname} border?",
                        f"Read the small sign that has a {cname} border."]) + " Answer with the text only."
        return Target(patch, q, text, "text", None, f"the small sign with the {cname} border",
                      {"text": text, "colour": cname, "asks": "text", "char_px": int(char_h * 0.72),
                       "seen_basis_px": int(char_h * 0.72)})

    def make_target(self, rng: np.random.Generator, kind: str, side: int) -> Target:
        if kind == "shape":
            return self._shape_target(rng, side)
        if kind == "glyph":
            return self._glyph_target(rng, side)
        return self._text_target(rng, side)

    # ---- scene ----------------------------------------------------------------------------------------------

    def scene_size(self, rng: np.random.Generator) -> tuple[int, int]:
        c = self.config
        long_side = int(rng.integers(max(c.min_side, int(c.max_side * 0.75)), c.max_side + 1))
        short_side = int(rng.integers(c.min_side, max(c.min_side, int(long_side * 0.8)) + 1))
        return (long_side, short_side) if rng.random() < 0.75 else (short_side, long_side)

    def _distractor(self, rng: np.random.Generator, target: Target, side: int) -> Image.Image:
        """A saturated look-alike: it shares the target's colour or its kind, never what the question names."""
        info = target.info
        colours = list(COLOURS)
        other_colours = [c for c in colours if c != info["colour"]]
        if info["asks"] == "colour":  # "the small star": any other shape, any colour (the target's too)
            shape = str(rng.choice([sh for sh in SHAPES if sh != info["shape"]]))
            return _shape_patch(shape, COLOURS[str(rng.choice(colours))], side)
        if info["asks"] == "shape":  # "the small red object": anything, in another colour
            return _shape_patch(str(rng.choice(SHAPES)), COLOURS[str(rng.choice(other_colours))], side)
        same_colour_shape = rng.random() < 0.5
        if same_colour_shape:  # the target's colour on something else
            return _shape_patch(str(rng.choice(SHAPES)), COLOURS[info["colour"]], side)
        cname = str(rng.choice(other_colours))
        if info["asks"] == "char":  # a circle of another colour
            return _glyph_patch(GLYPH_CHARS[int(rng.integers(len(GLYPH_CHARS)))], cname, side, self.config.font_files)
        return _sign_patch(asymmetric_string(rng, int(rng.integers(3, 6))), cname, int(info.get("char_px", 11)),
                           self.config.font_files)

    def place(self, rng: np.random.Generator, size: tuple[int, int], target: Target, kind: str, area_frac: float
              ) -> Sample:
        """Draw the clutter and the distractors, paste the target at a random free place, build the sample."""
        c = self.config
        w, h = size
        style = c.clutter_styles[int(rng.integers(len(c.clutter_styles)))]
        scene = cluttered_scene(rng, size, density=c.clutter_density, style=style)
        pw, ph = target.patch.size
        margin_x, margin_y = max(1, w // 50), max(1, h // 50)
        x = int(rng.integers(margin_x, max(margin_x + 1, w - pw - margin_x)))
        y = int(rng.integers(margin_y, max(margin_y + 1, h - ph - margin_y)))
        taken = [(x - pw, y - ph, x + 2 * pw, y + 2 * ph)]  # keep look-alikes a target's size away from it
        distractor_boxes = []
        for _k in range(int(rng.integers(c.min_distractors, c.max_distractors + 1))):
            patch = self._distractor(rng, target, max(pw, ph))
            dw, dh = patch.size
            for _try in range(30):
                dx = int(rng.integers(margin_x, max(margin_x + 1, w - dw - margin_x)))
                dy = int(rng.integers(margin_y, max(margin_y + 1, h - dh - margin_y)))
                if all(dx + dw <= a or dx >= b2 or dy + dh <= b or dy >= b3 for a, b, b2, b3 in taken):
                    break
            else:
                continue
            scene.paste(patch, (dx, dy), patch)
            taken.append((dx, dy, dx + dw, dy + dh))
            distractor_boxes.append([dx, dy, dx + dw, dy + dh])
        scene.paste(target.patch, (x, y), target.patch)
        alpha = np.asarray(target.patch.getchannel("A")) > 0
        ys, xs = np.nonzero(alpha)
        box = [x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1]
        actual = (box[2] - box[0]) * (box[3] - box[1]) / (w * h)
        mask = np.zeros((h, w), dtype=bool)
        mask[y : y + ph, x : x + pw] = alpha
        seen = float(target.info["seen_basis_px"]) * model_scale(size, c.max_pixels)
        return Sample(
            images=[scene], question=target.question, answer=target.answer, answer_type=target.answer_type,
            choices=target.choices, evidence=[{"box": box, "image": 0, "label": target.referent}],
            required_ops=["crop"],
            metadata={"task_type": self.name, "target_kind": kind, "area_frac": actual, "target": target.info,
                      "referent": target.referent, "clutter_style": style, "distractor_boxes": distractor_boxes,
                      "target_seen_px": round(seen, 2), "legible_at_input": seen >= LEGIBLE_PX,
                      "max_pixels": c.max_pixels},
            debug={"target_mask": mask, "patch": target.patch, "patch_xy": (x, y), "sampled_area_frac": area_frac},
        )

    def target_side(self, rng: np.random.Generator, size: tuple[int, int]) -> tuple[int, float]:
        c = self.config
        lo, hi = math.log(c.min_area_frac), math.log(c.max_area_frac)
        frac = math.exp(rng.uniform(lo, hi))
        return max(6, int(math.sqrt(frac * size[0] * size[1]))), frac

    def legible_at_input(self, target: Target, size: tuple[int, int]) -> bool:
        """Whether the target could be read without a crop at `max_pixels`."""
        return float(target.info["seen_basis_px"]) * model_scale(size, self.config.max_pixels) >= LEGIBLE_PX

    def sample(self, rng: np.random.Generator, index: int) -> Sample:
        c = self.config
        size = self.scene_size(rng)
        kind = c.target_kinds[int(rng.integers(len(c.target_kinds)))]
        side, frac = self.target_side(rng, size)
        target = self.make_target(rng, kind, side)
        for _try in range(8):  # smaller until a crop is needed (characters keep their legible minimum)
            if not (c.require_crop and self.legible_at_input(target, size)) or side <= 6:
                break
            side, frac = max(6, int(side * 0.7)), frac * 0.49
            target = self.make_target(rng, kind, side)
        return self.place(rng, size, target, kind, frac)


def _shape_patch(shape: str, colour: tuple[int, int, int], side: int) -> Image.Image:
    patch = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(patch).polygon(_shape_polygon(shape, side), fill=(*colour, 255), outline=(20, 20, 20, 255))
    return patch


def _glyph_patch(ch: str, cname: str, side: int, font_files: list[str]) -> Image.Image:
    side = max(side, int(MIN_CHAR_PX / 0.62) + 2)
    patch = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    d = ImageDraw.Draw(patch)
    d.ellipse((0, 0, side - 1, side - 1), fill=(*COLOURS[cname], 255))
    ink = (0, 0, 0) if cname in ("yellow", "cyan", "orange") else (255, 255, 255)
    d.text((side / 2, side / 2), ch, font=get_font(int(side * 0.75), font_files), fill=(*ink, 255), anchor="mm")
    return patch


def _sign_patch(text: str, cname: str, char_h: int, font_files: list[str]) -> Image.Image:
    font = get_font(char_h, font_files)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x1, y1, x2, y2 = probe.textbbox((0, 0), text, font=font)
    border = max(1, char_h // 8)
    pad = max(2, char_h // 4)
    w, h = (x2 - x1) + 2 * (pad + border), (y2 - y1) + 2 * (pad + border)
    patch = Image.new("RGBA", (w, h), (0, 0, 0, 0))  # type: ignore[arg-type]
    d = ImageDraw.Draw(patch)
    d.rectangle((0, 0, w - 1, h - 1), fill=(250, 250, 245, 255), outline=(*COLOURS[cname], 255), width=border)
    d.text((pad + border - x1, pad + border - y1), text, font=font, fill=(15, 15, 15, 255))
    return patch
