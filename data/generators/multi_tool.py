"""Multi-tool tasks (MVToolBench style): a tiny target in a cluttered scene, and the whole image rotated or mirrored.

Answering needs two tools in order: undo the orientation (the inverse of the transform), then crop the tiny target
and read it. Scenes are landscapes by default (`clutter_styles`): sky above a horizon with trees and houses
standing on it, so which way is up can be seen in the input at any resolution before zooming
(`metadata["up_cue"]`). Required ops are `[inverse(transform), "crop"]`. Targets always carry characters (`glyph` or `text`),
so the orientation matters: glyph characters are chosen among those that do not look the same under the task's
transform, and text codes are never palindromes of symmetric characters (`data.vocabulary`).

The evidence box is in the coordinates of the image as given (transformed), like every evidence box; the upright
scene and the upright box are in `Sample.debug` (and the upright box in metadata, for oracle code that crops after
fixing the orientation).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from data.generators.base import Generator, Sample
from data.generators.visual_search import VisualSearchConfig, VisualSearchGenerator
from data.orientation import ORIENTATION_OPS, apply_op, apply_op_pil, inverse, map_box
from data.vocabulary import GLYPH_CHARS

# Characters that look the same (or nearly) after each transform: never used as a glyph under that transform.
INVARIANT_CHARS: dict[str, str] = {
    "flip_h": "AHIMOTUVWXY018", "flip_v": "BCDEHIKOX0138", "rotate180": "HINOSXZ018", "rotate90": "O0",
    "rotate270": "O0",
}


class MultiToolConfig(VisualSearchConfig):
    target_kinds: list[str] = Field(default_factory=lambda: ["glyph", "text"])
    transforms: list[str] = Field(default_factory=lambda: list(ORIENTATION_OPS))
    clutter_styles: list[str] = Field(default_factory=lambda: ["landscape"],
                                      description="landscape scenes have a real up direction (sky, horizon, things "
                                                  "standing on the ground), so the orientation can be seen before "
                                                  "zooming")


class MultiToolGenerator(Generator):
    name: ClassVar[str] = "multi_tool"
    description: ClassVar[str] = "rotated/flipped scene with a tiny character target; fix orientation, then crop"
    Config = MultiToolConfig
    config: MultiToolConfig

    def __init__(self, config: MultiToolConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        c = self.config
        for k in c.target_kinds:
            if k not in ("glyph", "text"):
                raise ValueError(f"{self.name}: target kind {k!r} does not depend on orientation; valid: glyph, text")
        for t in c.transforms:
            if t not in ORIENTATION_OPS:
                raise ValueError(f"{self.name}: unknown transform {t!r}; valid: {', '.join(ORIENTATION_OPS)}")
        if not c.transforms or not c.target_kinds:
            raise ValueError(f"{self.name}: transforms and target_kinds must not be empty")
        search_cfg = {k: v for k, v in c.model_dump().items() if k in VisualSearchConfig.model_fields}
        self._search = VisualSearchGenerator(search_cfg)

    def sample(self, rng: np.random.Generator, index: int) -> Sample:
        c = self.config
        vs = self._search
        transform = c.transforms[int(rng.integers(len(c.transforms)))]
        size = vs.scene_size(rng)
        kind = c.target_kinds[int(rng.integers(len(c.target_kinds)))]
        side, frac = vs.target_side(rng, size)
        if kind == "glyph":
            chars = "".join(ch for ch in GLYPH_CHARS if ch not in INVARIANT_CHARS[transform])
            target = vs._glyph_target(rng, side, chars)
        else:
            target = vs._text_target(rng, side)
        upright = vs.place(rng, size, target, kind, frac)
        up_box = upright.evidence[0]["box"]
        given = apply_op_pil(upright.images[0], transform)
        box = [int(v) for v in map_box(up_box, transform, size)]
        mask = apply_op(upright.debug["target_mask"], transform)
        distractors = [[int(v) for v in map_box(b, transform, size)] for b in upright.metadata["distractor_boxes"]]
        up_cue = upright.metadata["clutter_style"] == "landscape"
        return Sample(
            images=[given], question=upright.question, answer=upright.answer, answer_type=upright.answer_type,
            choices=upright.choices, evidence=[{"box": box, "image": 0, "label": upright.evidence[0]["label"]}],
            required_ops=[inverse(transform), "crop"],
            metadata={**upright.metadata, "task_type": self.name, "transform": transform, "upright_box": up_box,
                      "distractor_boxes": distractors, "up_cue": "landscape" if up_cue else None},
            debug={**upright.debug, "target_mask": mask, "upright": upright.images[0], "upright_box": up_box,
                   "transform": transform},
        )
