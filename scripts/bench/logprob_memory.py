"""Benchmark: peak memory of the trainer's chunked logprob pass against the full-vocabulary computation.

    .venv/bin/python scripts/bench/logprob_memory.py                        # CPU: 2k/8k/16k chunked, 2k full
    .venv/bin/python scripts/bench/logprob_memory.py --device cuda --hidden 2048 --dtype bfloat16
    .venv/bin/python scripts/bench/logprob_memory.py --lengths 2048,4096 --full-max-tokens 4096

What is measured: one training pass (forward and backward) of the per-token logprobs and entropy of one sequence
of T tokens at Qwen's vocabulary (152,064), from random final hidden states (T, H) and a random LM head (V, H):

- `chunked`: `train.logprobs.chunked_logprobs` (what `token_logprobs` runs after the model's backbone);
- `full`: the obvious computation, (T, V) logits in the model dtype, `.float()`, log-softmax over the vocabulary,
  gather at the next token (what `token_logprobs` did before, and what most trainers do).

The backbone is the same for both and is left out. Peak memory is the increase over the memory held before the
pass (inputs, weights): `torch.cuda.max_memory_allocated` with `--device cuda`; on CPU, the process's resident
set size sampled every millisecond plus `ru_maxrss`, each measurement in a fresh subprocess so that freed memory
of an earlier one cannot hide a peak. The logits' memory does not depend on H; a small H (default 256 on CPU)
keeps the CPU run short. The full computation needs several (T, V) fp32 tensors (10 GB each at 16k tokens), so
on CPU it runs only up to `--full-max-tokens` (default 2048), and longer rows print the size of one (T, V) fp32
tensor instead of a measurement. Printed: MiB for each, their ratio, and seconds per pass (noisy on a shared
machine; compare within one run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

VOCAB = 152064
MIB = 2**20


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


class _PeakSampler:
    """The resident set size's maximum while active, sampled every millisecond in a thread."""

    def __enter__(self) -> _PeakSampler:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _one(method: str, tokens: int, hidden_size: int, dtype_name: str, device: str, chunk: int) -> dict[str, float]:
    """Run one pass in this process and return its peak extra memory (bytes) and seconds."""
    import torch

    from train.logprobs import chunked_logprobs

    torch.manual_seed(0)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    dev = torch.device(device)
    hidden = (torch.randn(tokens, hidden_size, device=dev) * 0.5).to(dtype).requires_grad_(True)
    weight = (torch.randn(VOCAB, hidden_size, device=dev) / hidden_size**0.5).to(dtype).requires_grad_(True)
    targets = torch.randint(0, VOCAB, (tokens,), device=dev)
    coef = torch.randn(tokens, device=dev)

    def run() -> None:
        if method == "chunked":
            logp, ent = chunked_logprobs(hidden, weight, None, targets, chunk_size=chunk, with_entropy=True)
        else:
            logits = torch.nn.functional.linear(hidden, weight).float()
            logp_v = torch.log_softmax(logits, dim=-1)
            logp = logp_v.gather(1, targets[:, None]).squeeze(1)
            ent = -(logp_v.exp() * logp_v).sum(-1)
        assert ent is not None
        ((logp * coef).sum() + 0.01 * ent.sum()).backward()

    # the gradient buffers of the inputs exist in both methods: allocate them before measuring
    hidden.grad = torch.zeros_like(hidden)
    weight.grad = torch.zeros_like(weight)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        run()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = _rss()
        maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.perf_counter()
        with _PeakSampler() as sampler:
            run()
        seconds = time.perf_counter() - t0
        maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak_abs = max(sampler.peak, maxrss1 if maxrss1 > maxrss0 else 0)
        peak = peak_abs - base
    return {"peak_bytes": float(max(peak, 0)), "seconds": seconds}


def _measure(method: str, tokens: int, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--one", f"{method}:{tokens}", "--hidden", str(args.hidden), "--dtype",
           args.dtype, "--device", args.device, "--chunk", str(args.chunk)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"measurement {method} at {tokens} tokens failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--lengths", default="2048,8192,16384", help="sequence lengths (tokens), comma-separated")
    ap.add_argument("--hidden", type=int, default=None, help="hidden size H (default: 256 on CPU, 2048 on CUDA)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--chunk", type=int, default=1024, help="chunk_size of the chunked pass")
    ap.add_argument("--full-max-tokens", type=int, default=None,
                    help="longest sequence for the full computation (default: 2048 on CPU, no limit on CUDA)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: METHOD:TOKENS in this process
    args = ap.parse_args()
    if args.hidden is None:
        args.hidden = 2048 if args.device.startswith("cuda") else 256
    if args.one:
        method, tokens = args.one.split(":")
        print(json.dumps(_one(method, int(tokens), args.hidden, args.dtype, args.device, args.chunk)))
        return 0
    full_max = args.full_max_tokens if args.full_max_tokens is not None else (
        10**9 if args.device.startswith("cuda") else 2048)
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    print(f"vocab {VOCAB}, hidden {args.hidden}, {args.dtype}, device {args.device}, chunk {args.chunk}, "
          f"cores {os.cpu_count()}; forward + backward of logprobs and entropy; peak MiB above the inputs")
    header = f"{'tokens':>7} {'chunked MiB':>12} {'full MiB':>12} {'full/chunked':>13} {'chunked s':>10} {'full s':>8}"
    print(header)
    print("-" * len(header))
    for tokens in lengths:
        c = _measure("chunked", tokens, args)
        if tokens <= full_max:
            f = _measure("full", tokens, args)
            full_s = f"{f['peak_bytes'] / MIB:>12.0f}"
            ratio = f"{f['peak_bytes'] / max(c['peak_bytes'], 1.0):>12.1f}x"
            secs = f"{f['seconds']:>8.2f}"
        else:
            one = tokens * VOCAB * 4 / MIB
            full_s, ratio, secs = f"{'>' + format(one, '.0f'):>12}", f"{'(skipped)':>13}", f"{'-':>8}"
        print(f"{tokens:>7} {c['peak_bytes'] / MIB:>12.0f} {full_s} {ratio} {c['seconds']:>10.2f} {secs}")
    if any(t > full_max for t in lengths):
        print(f"'>N': the full computation was not run above {full_max} tokens here; N is the size of one (T, V) fp32 "
              "tensor, of which it holds several (logits, log-softmax, their gradients)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
