"""From an unexpanded token sequence plus its images to what a Qwen-VL forward pass takes.

Trajectories keep one `<|image_pad|>` per image (what vLLM takes: it expands placeholders itself, and a prompt
expanded twice is silently corrupted, docs/methods.md, "Pitfalls"). The HF engine and the trainer need the expanded
form: each placeholder repeated `grid_t * grid_h * grid_w / merge_size**2` times, plus `pixel_values` and
`image_grid_thw` from the image processor. `expand_sequence` does that once, and maps per-token arrays (loss mask,
logprobs, step ids) onto the expanded positions so that image tokens carry no loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ExpandedSequence:
    """`input_ids` expanded; `positions[i]` is where original token i landed; image tokens have `origin == -1`."""

    input_ids: list[int]
    origin: list[int]  # for every expanded token, the index of the original token it came from
    positions: list[int]  # for every original token, its position in the expanded sequence (first copy)
    pixel_values: Any | None  # torch.Tensor (num_patches, patch_dim) or None without images
    image_grid_thw: Any | None  # torch.Tensor (num_images, 3) or None
    mm_token_type_ids: list[int]  # 1 on image tokens, 0 elsewhere (Qwen-VL models need it for multimodal RoPE)

    def map_array(self, values: Sequence[Any], fill: Any) -> list[Any]:
        """Carry a per-original-token array onto the expanded sequence; expanded image copies get `fill` except
        the first copy, which keeps the placeholder's own value."""
        out = [fill] * len(self.input_ids)
        for i, p in enumerate(self.positions):
            out[p] = values[i]
        return out


def image_token_id(processor: Any) -> int:
    return int(processor.image_token_id if getattr(processor, "image_token_id", None) is not None
               else processor.tokenizer.convert_tokens_to_ids("<|image_pad|>"))


def to_pil(image: Any) -> Any:
    """uint8 array (H, W[, C]) or PIL image -> RGB PIL image (what Qwen's image processor expects)."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    return image.convert("RGB") if image.mode != "RGB" else image


def process_images(processor: Any, images: Sequence[Any]) -> tuple[Any, Any]:
    """(pixel_values, image_grid_thw) for `images` in order, or (None, None)."""
    if not images:
        return None, None
    out = processor.image_processor(images=[to_pil(im) for im in images], return_tensors="pt")
    return out["pixel_values"], out["image_grid_thw"]


def tokens_per_image(processor: Any, grid_thw: Any) -> list[int]:
    merge = int(processor.image_processor.merge_size) ** 2
    return [int(g.prod().item()) // merge for g in grid_thw]


def expand_sequence(token_ids: Sequence[int], images: Sequence[Any], processor: Any,
                    *, pixel_values: Any | None = None, image_grid_thw: Any | None = None) -> ExpandedSequence:
    """Expand every image placeholder of `token_ids` for `images` (same order). Pass precomputed
    `pixel_values`/`image_grid_thw` to skip the image processor. Raises ValueError when the number of placeholders
    and images differ (the bug that silently corrupts prompts)."""
    pad = image_token_id(processor)
    n_pad = sum(1 for t in token_ids if t == pad)
    if n_pad != len(images):
        raise ValueError(
            f"the sequence has {n_pad} image placeholder(s) but {len(images)} image(s) were given; each image must "
            "appear exactly once as an unexpanded <|image_pad|> (an already-expanded sequence cannot be expanded again)"
        )
    if pixel_values is None and images:
        pixel_values, image_grid_thw = process_images(processor, images)
    counts = tokens_per_image(processor, image_grid_thw) if images else []
    ids: list[int] = []
    origin: list[int] = []
    positions: list[int] = []
    k = 0
    for i, t in enumerate(token_ids):
        positions.append(len(ids))
        if t == pad:
            ids.extend([pad] * counts[k])
            origin.extend([i] * counts[k])
            k += 1
        else:
            ids.append(t)
            origin.append(i)
    mm = [1 if t == pad else 0 for t in ids]
    return ExpandedSequence(ids, origin, positions, pixel_values, image_grid_thw, mm)


def trainer_inputs(token_ids: Sequence[int], images: Sequence[Any], processor: Any, *,
                   loss_mask: Sequence[int] | None = None, step_ids: Sequence[int] | None = None,
                   logprobs: Sequence[float] | None = None,
                   pixels: Callable[[Sequence[Any]], tuple[Any, Any]] | None = None) -> dict[str, Any]:
    """Tensors (batch of one) for a training forward pass over a trajectory: expanded `input_ids`,
    `attention_mask`, `pixel_values`, `image_grid_thw`, and the per-token arrays carried onto the expanded
    positions (`loss_mask` 0 on image tokens, `step_ids`, `old_logprobs`). `pixels`: where the images' processed
    tensors come from (e.g. a `rollout.image_cache.ProcessedImages`; default: the processor, now)."""
    import torch

    pv, grid = pixels(images) if pixels is not None else (None, None)
    ex = expand_sequence(token_ids, images, processor, pixel_values=pv, image_grid_thw=grid)
    out: dict[str, Any] = {
        "input_ids": torch.tensor([ex.input_ids], dtype=torch.long),
        "attention_mask": torch.ones((1, len(ex.input_ids)), dtype=torch.long),
        "mm_token_type_ids": torch.tensor([ex.mm_token_type_ids], dtype=torch.long),
    }
    if ex.pixel_values is not None:
        out["pixel_values"] = ex.pixel_values
        out["image_grid_thw"] = ex.image_grid_thw
    if loss_mask is not None:
        out["loss_mask"] = torch.tensor([ex.map_array(loss_mask, 0)], dtype=torch.long)
    if step_ids is not None:
        out["step_ids"] = torch.tensor([ex.map_array(step_ids, -1)], dtype=torch.long)
    if logprobs is not None:
        out["old_logprobs"] = torch.tensor([ex.map_array(logprobs, 0.0)], dtype=torch.float32)
    return out
