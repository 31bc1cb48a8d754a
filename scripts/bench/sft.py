"""SFT throughput: the project's collator and batching against TRL's own vision-language collator, in one run.

    .venv/bin/python scripts/bench/sft.py                      # CPU, tiny Qwen2.5-VL, ~2 minutes
    .venv/bin/python scripts/bench/sft.py --steps 20 --samples 64 --device cuda --hidden 1024

Three runs of the same trainer class (TRL's SFTTrainer), each in a fresh process so that peak memory is its own:

- `trl`:      TRL's `DataCollatorForVisionLanguageModeling` on a `messages` + `images` dataset, fixed-size batches;
- `codevl`:   the project's rendering, labels and padding collator on the same single-turn data, fixed-size batches
              (target: at most 5% slower than `trl`);
- `budget` vs `fixed` on mixed-length data (single-turn and long multi-turn samples): token-budget batches against
              fixed-size batches of the same mean size, counting only real (non-padding) tokens per second.

Printed: tokens/s (real tokens), peak RSS (CPU) or peak CUDA memory, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def make_data(out: Path, n: int, *, mixed: bool, seed: int = 0) -> tuple[Path, Path]:
    """Message-level trajectories (codevl format) and the same conversations in TRL's format."""
    import numpy as np
    from PIL import Image

    from rollout.protocols import get_protocol
    from rollout.task import Task
    from rollout.trajectory import Trajectory, TrajectoryImage, Turn, save_trajectories

    rng = np.random.default_rng(seed)
    proto = get_protocol("codevl")
    trajs, rows = [], []
    (out / "img").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
        path = out / "img" / f"{i}.png"
        Image.fromarray(arr).save(path)
        task = Task(id=f"b{i}", images=[str(path)], question=f"What is written in region {i}?", answer="ok",
                    answer_type="text")
        long = mixed and i % 4 == 0
        words = " ".join(["look at the image crop rotate read the text"] * (40 if long else 4))
        reply = f"{words} <answer>ok</answer>"
        prompt = proto.initial_messages(task.question, [(112, 112)])
        traj = Trajectory(id=task.id, task=task, protocol="codevl", prompt_messages=prompt,
                          turns=[Turn("assistant", 0, 0, reply, 0, answer="ok")],
                          images=[TrajectoryImage(arr, "input")])
        trajs.append(traj)
        rows.append({"messages": [*prompt, {"role": "assistant", "content": [{"type": "text", "text": reply}]}],
                     "image": str(path)})
    codevl = out / "codevl.jsonl"
    save_trajectories(codevl, trajs)
    trl = out / "trl.jsonl"
    trl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return codevl, trl


def _peak_mb(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(kind: str, model_dir: str, data: str, steps: int, batch: int, budget: int | None, device: str) -> dict:
    """One measured run in this process; returns real tokens/s and peak memory."""
    from transformers import TrainerCallback

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001, ANN003, ANN202
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001, ANN003, ANN202
            times.append(time.perf_counter() - self.t)

    if kind == "trl":
        import datasets
        from PIL import Image
        from trl import SFTConfig, SFTTrainer

        from train.config.model import ModelConfig
        from train.model.loading import load_model

        model, processor = load_model(ModelConfig(name_or_path=model_dir, dtype="float32", attn_implementation="sdpa",
                                                  freeze_vision_tower=True, freeze_projector=True))
        rows = [json.loads(x) for x in Path(data).read_text().splitlines()]
        ds = datasets.Dataset.from_list([{"messages": r["messages"], "images": [Image.open(r["image"]).convert("RGB")]}
                                         for r in rows])
        args = SFTConfig(output_dir=str(Path(data).parent / "trl-out"), per_device_train_batch_size=batch,
                         max_steps=steps, logging_steps=1, save_strategy="no", report_to="none",
                         gradient_checkpointing=False, bf16=False, max_length=None, disable_tqdm=True,
                         learning_rate=1e-4, use_cpu=device == "cpu", seed=0)
        trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=processor, callbacks=[Clock()])
        trainer.train()
        logged = [(r["step"], r["num_tokens"]) for r in trainer.state.log_history if "num_tokens" in r]
    else:
        from train.config import load_config
        from train.config.sft import SFTConfig as CodevlSFT
        from train.run_files import read_metrics
        from train.sft import run_sft

        extra = ([f"train.max_tokens_per_batch={budget}", f"data.max_length={budget}"] if budget else
                 [f"train.per_device_batch_size={batch}", "train.max_tokens_per_batch=null", "data.max_length=100000"])
        cfg = load_config(CodevlSFT, ROOT / "configs/sft/tiny_cpu.yaml", [
            f"model.name_or_path={model_dir}", f"data.train_files=[{data}]",
            f"run.output_dir={Path(data).parent / ('out-' + kind)}", f"train.max_steps={steps or 'null'}", "train.epochs=1", "train.resume=never",
            "train.progress_bar=false", "run.save_steps=100000", "run.logging_steps=1", "optim.lr=1e-4",
            # the same model setup as the TRL run: vision tower and projector frozen, SDPA attention
            "model.freeze_vision_tower=true", "model.freeze_projector=true", "model.attn_implementation=sdpa", *extra])
        run_sft(cfg, callbacks=[Clock()], say=lambda s: None)
        logged = [(r["step"], r["num_tokens"]) for r in read_metrics(cfg.run.output_dir) if "num_tokens" in r]
    logged.sort()
    if steps == 0:  # a whole epoch: every step counts
        tokens, t = logged[-1][1], sum(times)
    else:  # steps 2..N (the first is warm-up): real (non-padding) tokens from TRL's cumulative num_tokens metric
        tokens, t = logged[-1][1] - logged[0][1], sum(times[1:])
    return {"kind": kind, "seconds": t, "real_tokens": tokens, "tokens_per_s": tokens / t, "peak_mb": _peak_mb(device)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", default="runs/bench-sft")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, model_dir, data, steps, batch, budget = a.child
        print(json.dumps(run_one(kind, model_dir, data, int(steps), int(batch), int(budget) or None, a.device)))
        return 0
    from train.model.tiny import build_tiny_model

    work = Path(a.work)
    model_dir = str(build_tiny_model("qwen2_5_vl", work / "tiny"))
    single_codevl, single_trl = make_data(work / "single", a.samples, mixed=False)
    mixed_codevl, _ = make_data(work / "mixed", a.samples, mixed=True)

    def child(kind: str, data: Path, budget: int = 0) -> dict:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        out = subprocess.run([sys.executable, __file__, "--device", a.device, "--child", kind, model_dir, str(data),
                              str(a.steps), str(a.batch), str(budget)], capture_output=True, text=True, env=env)
        if out.returncode:
            raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    trl = child("trl", single_trl)
    ours = child("codevl", single_codevl)
    # one epoch over the same mixed-length samples (steps=0), fixed-size batches vs a token budget that holds about
    # as many samples on average
    a.steps, steps_given = 0, a.steps
    fixed = child("fixed", mixed_codevl)
    budget = child("budget", mixed_codevl, budget=a.batch * 400)
    a.steps = steps_given
    print(f"single-turn, batch {a.batch}, {a.steps} steps ({a.device}):")
    for r in (trl, ours):
        print(f"  {r['kind']:<7} {r['tokens_per_s']:9.0f} tokens/s  peak {r['peak_mb']:8.0f} MiB")
    print(f"  codevl / trl throughput: {ours['tokens_per_s'] / trl['tokens_per_s']:.3f}x "
          f"(target >= 0.95)")
    print(f"mixed lengths (1 in 4 samples ~10x longer), one epoch of {a.samples} samples:")
    for r in (fixed, budget):
        print(f"  {r['kind']:<7} {r['tokens_per_s']:9.0f} real tokens/s  peak {r['peak_mb']:8.0f} MiB")
    print(f"  token budget / fixed size: {budget['tokens_per_s'] / fixed['tokens_per_s']:.2f}x real tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
