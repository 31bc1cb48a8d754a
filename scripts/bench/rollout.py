"""Benchmark: the concurrent episode loop against a lock-step loop, on the same multi-turn episodes.

    .venv/bin/python scripts/bench/rollout.py                 # 24 episodes, 3 repeats
    .venv/bin/python scripts/bench/rollout.py --episodes 48 --repeats 5
    python scripts/bench/rollout.py --device cuda --torch-threads 4     # on a GPU node

Setup: the tiny Qwen2.5-VL model is taught (a few seconds of full-batch SFT) four scripted code-as-tool
trajectories of 2 or 3 code steps whose blocks do real image work in the real sandbox at three speeds (a crop,
~1 ms; a blur, ~25 ms; a 1024x1024 bilateral filter, ~300 ms), the slow block in a different turn per script, as
model-written code varies. Greedy decoding then makes every configuration run the same episodes. Three
configurations per repeat:

- concurrent: `rollout.run_episodes` (every episode its own task; the engine batches pending requests by the
  launch rule of `rollout.engines.batcher`);
- lock-step: all episodes generate, then all execute, turn by turn (what peers do), built from the same
  `Episode` phases;
- generation only: the concurrent loop with a pool that returns the recorded results instantly (the floor: what
  the episodes cost without any sandbox time).

Resources: on a GPU node generation runs on the GPU and the sandbox on the CPU cores. Here both run on the same two
cores, so by default torch gets one thread (`--torch-threads 1`): the stand-in for the accelerator, leaving the other
core to the sandbox sessions. Both loops run under the same setting; `--torch-threads 2` shows the fully contended
case, where CPU-bound sandbox work can only be hidden behind CPU-bound generation as far as cores allow.

Printed: wall times, lock-step / concurrent, the sandbox time summed over blocks, and for each loop the share of
that sandbox time it hides: 1 - (wall - generation-only wall) / sandbox time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rollout.engines.base import SamplingParams  # noqa: E402
from rollout.engines.hf import HFEngine  # noqa: E402
from rollout.loop import EpisodeLimits, EpisodeRunner, run_episodes  # noqa: E402
from rollout.protocols import get_protocol  # noqa: E402
from rollout.scripted import ScriptedTokenEngine  # noqa: E402
from rollout.task import Task  # noqa: E402
from sandbox import SandboxConfig, SandboxPool  # noqa: E402
from sandbox.result import ExecResult  # noqa: E402
from train.config.model import ModelConfig  # noqa: E402
from train.fit import fit_trajectories  # noqa: E402
from train.model.loading import load_model  # noqa: E402
from train.model.tiny import build_tiny_model  # noqa: E402

P = get_protocol("codevl")
# Real image work of three speeds, as model-written blocks have: a crop and its statistics (~1 ms), a blur of an
# upscaled image (~25 ms), an edge-preserving filter at 1024x1024 (~300 ms; the kind of block that holds a lock-step
# batch back). Each script puts its slow block in a different turn, so every lock-step turn waits for one.
FAST = "c = image_clue_0.crop((50, 50, 250, 200))\nprint(c.size, round(float(np.asarray(c).mean()), 1))"
MEDIUM = "g = cv2.GaussianBlur(np.asarray(image_clue_0.resize((768, 768))), (15, 15), 0)\nprint(g.shape)"
SLOW = "b = cv2.bilateralFilter(np.asarray(image_clue_0.resize((1024, 1024))), 15, 75, 75)\nprint(b.shape)"
SCRIPTS = {
    "slow-first": [P.format_assistant("Filter.", code=SLOW), P.format_assistant("Crop.", code=FAST),
                   P.format_assistant("", answer="1")],
    "slow-second": [P.format_assistant("Crop.", code=FAST), P.format_assistant("Filter.", code=SLOW),
                    P.format_assistant("", answer="2")],
    "slow-third": [P.format_assistant("Blur.", code=MEDIUM), P.format_assistant("Crop.", code=FAST),
                   P.format_assistant("Filter.", code=SLOW), P.format_assistant("", answer="3")],
    "quick": [P.format_assistant("Crop.", code=FAST), P.format_assistant("Blur.", code=MEDIUM),
              P.format_assistant("", answer="4")],
}
LIMITS = EpisodeLimits(max_turns=6, max_new_tokens_per_turn=120, max_total_tokens=2048)
GREEDY = SamplingParams(temperature=0)


class ReplayPool:
    """Returns results recorded in an earlier run, instantly: the generation-only floor (measurement only)."""

    def __init__(self, recorded: dict[str, ExecResult]) -> None:
        self.recorded = recorded

    @contextlib.asynccontextmanager
    async def session(self, images: dict[str, Any]):  # noqa: ANN201
        recorded = self.recorded

        class _S:
            async def run(self, code: str, timeout: float | None = None) -> ExecResult:
                return recorded[code]

        yield _S()


async def lockstep(tasks: list[Task], engine: Any, pool: Any) -> list[Any]:
    runner = EpisodeRunner(engine, P, pool, limits=LIMITS, sampling=GREEDY)
    eps = [runner.episode(t, sample_index=0, trajectory_id=f"{t.id}#0") for t in tasks]
    await asyncio.gather(*(e.start() for e in eps))
    active = eps
    while active:
        flags = await asyncio.gather(*(e.generate() for e in active))
        active = [e for e, f in zip(active, flags, strict=True) if f]
        flags = await asyncio.gather(*(e.act() for e in active))
        active = [e for e, f in zip(active, flags, strict=True) if f]
    for e in eps:
        await e.close()
    return [e.trajectory for e in eps]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torch-threads", type=int, default=1, help="threads for generation (the accelerator's stand-in)")
    ap.add_argument("--device", default="cpu", help="where the model generates: cpu, or cuda on a GPU node")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    print(f"device {args.device}, torch threads {args.torch_threads}, episodes {args.episodes}, repeats {args.repeats}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    model, proc = load_model(ModelConfig(name_or_path=str(build_tiny_model("qwen2_5_vl", tmp / "model")),
                                         dtype="float32", attn_implementation="eager",
                                         freeze_vision_tower=False, freeze_projector=False))
    model.to(args.device)
    img = tmp / "img.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (300, 400, 3), dtype=np.uint8)).save(img)
    kinds = list(SCRIPTS)
    n = len(kinds)
    tasks = [Task(id=f"{kinds[i % n]}-{i}", images=[str(img)], question=f"Run the {kinds[i % n]} analysis.",
                  answer=str(i % n + 1), answer_type="number") for i in range(args.episodes)]
    # One session per episode: the lock-step loop holds every episode's session across its barrier, so with fewer
    # slots than episodes it would wait on itself.
    pool = SandboxPool(SandboxConfig(max_sessions=max(64, args.episodes)))
    try:
        teach = [asyncio.run(run_episodes([tasks[k]], ScriptedTokenEngine(proc, SCRIPTS[kinds[k]]), protocol=P,
                                          pool=pool))[0] for k in range(n)]
        t0 = time.perf_counter()
        losses = fit_trajectories(model, proc, teach, steps=150, lr=3e-3)
        print(f"taught {n} scripts in {time.perf_counter() - t0:.1f} s (loss {losses[0]:.2f} -> {losses[-1]:.3f})")
        engine = HFEngine(model, proc, max_batch_size=args.episodes)
        rows = []
        for rep in range(args.repeats):
            t0 = time.perf_counter()
            conc = asyncio.run(run_episodes(tasks, engine, protocol=P, pool=pool, limits=LIMITS, sampling=GREEDY))
            t_conc = time.perf_counter() - t0
            t0 = time.perf_counter()
            lock = asyncio.run(lockstep(tasks, engine, pool))
            t_lock = time.perf_counter() - t0
            recorded = {s.code: s.result for tr in conc for s in tr.steps if s.result is not None}
            t0 = time.perf_counter()
            asyncio.run(run_episodes(tasks, engine, protocol=P, pool=ReplayPool(recorded), limits=LIMITS, sampling=GREEDY))
            t_gen = time.perf_counter() - t0
            sandbox_s = sum(tr.metadata["sandbox_s"] for tr in conc)
            steps_c = sum(len(t.steps) for t in conc)
            steps_l = sum(len(t.steps) for t in lock)
            rows.append((t_conc, t_lock, t_gen, sandbox_s))
            print(f"repeat {rep}: concurrent {t_conc:.2f} s | lock-step {t_lock:.2f} s | generation only {t_gen:.2f} s"
                  f" | sandbox time summed over blocks {sandbox_s:.2f} s | code steps {steps_c} / {steps_l}")
        med = [statistics.median(c) for c in zip(*rows, strict=True)]
        t_conc, t_lock, t_gen, sandbox_s = med
        print("\nmedian over repeats")
        print(f"  concurrent loop        {t_conc:6.2f} s")
        print(f"  lock-step loop         {t_lock:6.2f} s   ({t_lock / t_conc:.2f}x the concurrent loop)")
        print(f"  generation only        {t_gen:6.2f} s")
        print(f"  sandbox time (summed)  {sandbox_s:6.2f} s")
        for name, t in (("concurrent", t_conc), ("lock-step", t_lock)):
            added = t - t_gen
            print(f"  {name:10s}: sandbox adds {added:5.2f} s = {added / t:5.1%} of its wall time; "
                  f"hides {1 - added / sandbox_s:5.1%} of the sandbox time")
        faster = all(r[0] < r[1] for r in rows)
        print(f"  concurrent faster than lock-step on every repeat: {faster}")
    finally:
        pool.close()


if __name__ == "__main__":
    main()
