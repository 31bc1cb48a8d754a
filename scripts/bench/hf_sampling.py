"""Benchmark: what per-request seeded sampling (`rollout.engines.hf_sampler.PerRowSampler`) costs against
transformers' own sampling (one global RNG for the batch), on the same batch, same model, same token count.

    .venv/bin/python scripts/bench/hf_sampling.py                       # tiny model, CPU
    python scripts/bench/hf_sampling.py --device cuda --batch 64        # on a GPU node

Both runs decode exactly `--tokens` new tokens (EOS ignored) for `--batch` copies of a one-image prompt with the tiny
Qwen2.5-VL model whose vocabulary is padded to `--vocab` (the real models' ~152k by default, since the sampler's
work scales with the vocabulary). Printed: seconds per run (median of `--repeats`), ms per decoding step, and the
ratio per-request / global.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=151_936)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch
    from transformers import GenerationConfig, LogitsProcessorList

    from rollout.engines.hf_sampler import PerRowSampler
    from rollout.expand import expand_sequence
    from rollout.protocols import get_protocol
    from rollout.render import ChatRenderer
    from train.config.model import ModelConfig
    from train.model.loading import load_model
    from train.model.tiny import build_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="bench-sampling-"))
    model, proc = load_model(ModelConfig(name_or_path=str(build_tiny_model("qwen2_5_vl", tmp / "m")),
                                         dtype="float32", attn_implementation="eager",
                                         freeze_vision_tower=False, freeze_projector=False))
    model.resize_token_embeddings(args.vocab)  # the sampler's cost is per vocabulary entry
    model.to(args.device).eval()
    ids = ChatRenderer(proc).prompt_ids(get_protocol("codevl").initial_messages("What is shown?", [(64, 64)]))
    ex = expand_sequence(ids, [np.zeros((64, 64, 3), np.uint8)], proc)
    b = args.batch
    inputs = {"input_ids": torch.tensor([ex.input_ids] * b, device=args.device),
              "attention_mask": torch.ones((b, len(ex.input_ids)), dtype=torch.long, device=args.device),
              "mm_token_type_ids": torch.tensor([ex.mm_token_type_ids] * b, device=args.device),
              "pixel_values": ex.pixel_values.repeat(b, 1).to(args.device),
              "image_grid_thw": ex.image_grid_thw.repeat(b, 1).to(args.device)}

    def run(per_request: bool) -> float:
        common = dict(max_new_tokens=args.tokens, min_new_tokens=args.tokens, pad_token_id=0, eos_token_id=None)
        if per_request:
            gen = GenerationConfig(do_sample=False, temperature=None, top_p=None, top_k=None, **common)
            procs = LogitsProcessorList([PerRowSampler(list(range(b)), temperature=1.0, top_p=0.95, top_k=0,
                                                       device=torch.device(args.device))])
        else:
            gen = GenerationConfig(do_sample=True, temperature=1.0, top_p=0.95, top_k=0, **common)  # 0: no top-k, as ours
            procs = None
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**inputs, generation_config=gen, logits_processor=procs)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        assert out.shape[1] == len(ex.input_ids) + args.tokens
        return time.perf_counter() - t0

    run(False), run(True)  # warm up
    glob = statistics.median(run(False) for _ in range(args.repeats))
    per = statistics.median(run(True) for _ in range(args.repeats))
    print(f"device {args.device}, batch {b}, {args.tokens} tokens, vocabulary {args.vocab:,}")
    print(f"  transformers sampling (global RNG)  {glob:7.3f} s  ({1000 * glob / args.tokens:6.2f} ms/step)")
    print(f"  per-request seeded sampling         {per:7.3f} s  ({1000 * per / args.tokens:6.2f} ms/step)")
    print(f"  per-request / global: {per / glob:.2f}x")


if __name__ == "__main__":
    main()
