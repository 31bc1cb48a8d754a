"""Benchmark: the HF engine's per-image cache of processed pixels against processing every prompt's images.

    .venv/bin/python scripts/bench/image_cache.py                  # ~20 s on 2 CPU cores
    .venv/bin/python scripts/bench/image_cache.py --turns 8 --group 8 --max-pixels 1003520

Workload: one group of `--group` rollouts of an episode of `--turns` turns on a 1280x960 input image; each turn adds
one image (a crop of the input, 640x480, different per rollout and turn), so turn k's prompt carries k images, as
in the episode loop. Each prompt's images are turned into pixel values either by `rollout.expand.process_images`
on all of them (what the HF engine did before) or by `rollout.image_cache.ProcessedImages` (each image processed
once; later turns and the other rollouts of the group reuse it). The tensors are checked equal. Printed: seconds
for the whole group each way, images processed each way, and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--max-pixels", type=int, default=1003520, help="the processor's max_pixels (1280 x 28 x 28)")
    a = ap.parse_args()

    import numpy as np
    import torch

    from rollout.expand import process_images
    from rollout.image_cache import ProcessedImages
    from train.model.processor import load_processor
    from train.model.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        processor = load_processor(build_tiny_model("qwen2_5_vl", Path(tmp) / "tiny"), max_pixels=a.max_pixels)
    rng = np.random.default_rng(0)
    source = rng.integers(0, 255, (960, 1280, 3), dtype=np.uint8)
    prompts = []
    for g in range(a.group):
        images = [source]
        for t in range(1, a.turns):
            y, x = (g * 37 + t * 53) % 480, (g * 61 + t * 29) % 640
            images.append(np.ascontiguousarray(source[y:y + 480, x:x + 640]))
            prompts.append(list(images))
    t0 = time.perf_counter()
    plain = [process_images(processor, p) for p in prompts]
    t_plain = time.perf_counter() - t0
    cache = ProcessedImages(processor)
    t0 = time.perf_counter()
    cached = [cache(p) for p in prompts]
    t_cache = time.perf_counter() - t0
    for (pa, ga), (pb, gb) in zip(plain, cached, strict=True):
        assert torch.equal(pa, pb) and torch.equal(ga, gb)
    n_plain = sum(len(p) for p in prompts)
    print(f"{a.group} rollouts x {a.turns} turns, max_pixels {a.max_pixels}: {len(prompts)} prompts")
    print(f"  process every prompt's images: {t_plain:6.2f} s, {n_plain} images processed")
    print(f"  per-image cache:               {t_cache:6.2f} s, {cache.misses} images processed, {cache.hits} reused")
    print(f"  {t_plain / t_cache:.1f}x faster (tensors equal)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): no figures", file=sys.stderr)
        sys.exit(130)
