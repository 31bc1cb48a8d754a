"""ProcessedImages: each image processed once, with exactly the tensors processing all images together gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rollout.expand import process_images
from rollout.image_cache import ProcessedImages, image_key


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((64, 96), (120, 80), (33, 200))]


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_cached_tensors_equal_processing_all_images_together(arch: str, tiny_dirs: dict[str, Path]) -> None:
    from train.model.processor import load_processor

    processor = load_processor(tiny_dirs[arch])
    a, b, c = _images()
    cache = ProcessedImages(processor)
    for turn in ([a], [a, b], [a, b, c], [a, b, c, a.copy()]):  # an episode's prompts: images accumulate
        pixels, grid = cache(turn)
        want_pixels, want_grid = process_images(processor, turn)
        assert torch.equal(grid, want_grid)
        assert torch.equal(pixels, want_pixels)
    # a: turn 1; b: turn 2; c: turn 3; the copy of a is the same content. 10 lookups, 3 processed.
    assert (cache.misses, cache.hits) == (3, 7)


def test_a_changed_image_is_a_new_image_and_the_cache_is_bounded(processor: Any) -> None:
    a, b, _ = _images()
    flipped = a[:, ::-1]
    assert image_key(flipped) != image_key(a)
    pixels, _ = ProcessedImages(processor)([flipped])
    assert torch.equal(pixels, process_images(processor, [flipped])[0])
    one = ProcessedImages(processor, max_bytes=1)  # keeps only the newest image
    one([a])
    one([b])
    one([a])
    assert (one.misses, one.hits) == (3, 0)
    assert one([]) == (None, None)


def test_an_image_object_seen_before_is_not_hashed_again(processor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import rollout.image_cache as image_cache

    hashed: list[tuple[int, ...]] = []
    real = image_cache.image_key

    def counting(image: Any) -> str:
        hashed.append(np.asarray(image).shape)
        return real(image)

    monkeypatch.setattr(image_cache, "image_key", counting)
    a, b, _ = _images()
    cache = ProcessedImages(processor)
    for turn in ([a], [a, b], [a, b]):  # one episode's prompts: the same array objects every turn
        cache(turn)
    assert hashed == [a.shape, b.shape]
    copy = a.copy()  # another object with the same content: hashed, then found by content
    cache([copy])
    assert len(hashed) == 3 and (cache.misses, cache.hits) == (2, 4)
