"""Benchmark: bytes the server engine sends per image per turn with `content_parts` (PNG data URL) against the
`features` transport (the image's processed pixel tensors, base64), and the client-side time to prepare each.

    .venv/bin/python scripts/bench/server_image_bytes.py
    .venv/bin/python scripts/bench/server_image_bytes.py --max-pixels 1003520     # a config's model.max_pixels

Images: a synthetic scene (gradients, shapes, text-like strokes, mild sensor noise: roughly what a photo or a
rendered chart compresses like) and uniform random noise (PNG's worst case), at three sizes. The features size is
that of the float32 `pixel_values` the Qwen2.5-VL image processor returns for the image (vLLM 0.31 serialises the
tensor bytes inline with msgpack, then base64: `mm_serde.encode_mm_kwargs_item`), which is what the features
transport re-sends with every turn; the PNG is what `content_parts` sends (once encoded, cached client-side; the
server's processor cache is keyed by the `uuid`). Uses the offline tiny model's processor with Qwen2.5-VL's image
settings (patch 14, merge 2) and the given pixel bounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A synthetic image with smooth regions, edges and a little noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200, y / h * 180, (x + y) / (w + h) * 220], axis=-1)
    for _ in range(30):
        y0, x0 = rng.randint(0, h - 20), rng.randint(0, w - 20)
        img[y0:y0 + rng.randint(10, h // 4), x0:x0 + rng.randint(10, w // 4)] = rng.randint(0, 255, 3)
    for _ in range(200):  # text-like strokes
        y0, x0 = rng.randint(0, h - 3), rng.randint(0, w - 40)
        img[y0:y0 + 2, x0:x0 + rng.randint(5, 40)] = 20
    img += rng.normal(0, 2.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-pixels", type=int, default=12845056, help="Qwen2.5-VL's default")
    ap.add_argument("--min-pixels", type=int, default=3136)
    args = ap.parse_args()

    from rollout.engines.openai_chat import png_data_url
    from rollout.engines.vllm_server import PNG_COMPRESS_LEVEL
    from rollout.expand import process_images
    from train.model.processor import load_processor
    from train.model.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_model("qwen2_5_vl", Path(tmp) / "tiny", seed=0)
        proc = load_processor(path, min_pixels=args.min_pixels, max_pixels=args.max_pixels)
    print(f"max_pixels={args.max_pixels}")
    print(f"{'image':>22} {'png KiB':>9} {'features KiB':>13} {'ratio':>7} {'png ms':>8} {'process ms':>11}")
    for kind in ("scene", "noise"):
        for h, w in ((448, 448), (768, 1024), (1080, 1920)):
            img = scene(h, w) if kind == "scene" else np.random.RandomState(1).randint(0, 255, (h, w, 3), np.uint8)
            t0 = time.perf_counter()
            url = png_data_url(img, compress_level=PNG_COMPRESS_LEVEL)
            png_ms = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            pixel_values, _ = process_images(proc, [img])
            proc_ms = (time.perf_counter() - t0) * 1e3
            feat_bytes = int(pixel_values.float().numel() * 4 * 4 / 3)  # float32, base64
            print(f"{kind + f' {w}x{h}':>22} {len(url) / 1024:9.0f} {feat_bytes / 1024:13.0f} "
                  f"{feat_bytes / len(url):7.1f} {png_ms:8.1f} {proc_ms:11.1f}")


if __name__ == "__main__":
    main()
