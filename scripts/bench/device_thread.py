"""Benchmark: what handing each weight tensor to the engine's device thread costs (the colocated vLLM engine's
`update_weights` loads every tensor on `rollout.engines.device_thread.DeviceThread`), against loading it directly
on the caller's thread, for the same tensors and the same copy.

    .venv/bin/python scripts/bench/device_thread.py                      # CPU tensors
    python scripts/bench/device_thread.py --device cuda                  # on a GPU node (adds the stream waits)

The "load" is what vLLM's `load_weights` does at its core, `param.copy_(tensor)`, into preallocated destinations;
`--tensors` tensors of `--numel` elements each (default ~ the tensor count of Qwen2.5-VL-7B, 729, at 1M elements).
Printed: seconds per full push (median of `--repeats`, the two variants interleaved), microseconds per tensor, and the ratio thread / direct.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tensors", type=int, default=729)
    ap.add_argument("--numel", type=int, default=1 << 20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import torch

    from rollout.engines.device_thread import DeviceThread

    dev = torch.device(args.device)
    src = [torch.randn(args.numel, device=dev) for _ in range(args.tensors)]
    dst = [torch.empty_like(t) for t in src]
    thread = DeviceThread(dev.index or 0) if dev.type == "cuda" else DeviceThread(0, bind=lambda i: None)

    def load(i: int, event: object) -> None:
        if event is not None:
            torch.cuda.current_stream().wait_event(event)  # type: ignore[arg-type]
        dst[i].copy_(src[i])
        if dev.type == "cuda":
            torch.cuda.current_stream().synchronize()

    def direct() -> None:
        for i in range(args.tensors):
            dst[i].copy_(src[i])
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def handed() -> None:
        for i in range(args.tensors):
            event = None
            if dev.type == "cuda":
                event = torch.cuda.Event()
                event.record()
            thread.call(load, i, event)

    fns = {"direct": direct, "device thread": handed}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm up (the thread starts on its first call)
    for _ in range(args.repeats):  # interleaved, so that load from other processes hits both alike
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    results = {name: statistics.median(ts) for name, ts in times.items()}
    for name, sec in results.items():
        print(f"{name:>14}: {sec:.4f} s per push, {sec / args.tensors * 1e6:.1f} us per tensor")
    print(f"ratio device thread / direct: {results['device thread'] / results['direct']:.2f}x "
          f"({args.tensors} tensors x {args.numel} elements on {args.device})")
    thread.shutdown()


if __name__ == "__main__":
    main()
