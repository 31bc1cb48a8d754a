"""One RL step, timed per phase, and the policy update against TRL's GRPOTrainer on the same workload, in one run.

    .venv/bin/python scripts/bench/rl_step.py                        # CPU, tiny Qwen2.5-VL, a few minutes
    .venv/bin/python scripts/bench/rl_step.py --zero 2                # the same under DeepSpeed ZeRO-2 (accelerate launch)
    python scripts/bench/rl_step.py --device cuda --model-config 3b --zero 3 --steps 3 --prompts 8 --max-new 256

Workload (both trainers): single-turn episodes (one assistant turn, no code run), `--prompts` tasks x `--group`
rollouts per step, `--max-new` sampled tokens at most, an image per prompt, no KL, one optimizer step per step,
generation with transformers' `generate` (the HF engine / TRL without vLLM), the same model and seed.

`--zero 2|3` runs both trainers in one process under `accelerate launch` with configs/deepspeed/zero<N>.json
(DeepSpeed's CPU accelerator on `--device cpu`).

Printed:
- codevl: mean seconds per phase over the steps after the first (rollout = generation + sandbox, advantages,
  update, sync) and the share of the step outside generation and the update; on CUDA, the peak memory allocated
  during each phase (the trainer's `memory/<phase>_peak_gib` metrics);
- policy-update throughput, sampled (loss) tokens per second of update time, codevl vs TRL (target: not slower).
  TRL's update time is its training step minus its generation-and-scoring call;
- the memory of the trainer's logprob pass is measured by scripts/bench/logprob_memory.py.
`--model-config 3b` builds a random-initialised Qwen2.5-VL with Qwen2.5-VL-3B's text dimensions (no download).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DIMS = {  # text dimensions of real checkpoints (their config.json), vision tower kept tiny
    "tiny": None,
    "3b": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
           "num_key_value_heads": 2, "vocab_size": 151936},
}


def build_model(kind: str, out: Path) -> Path:
    from train.model.tiny import build_tiny_model

    path = build_tiny_model("qwen2_5_vl", out / "tiny")
    dims = DIMS[kind]
    if dims is None:
        return path
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    cfg = AutoConfig.from_pretrained(path)
    tokens = {k: getattr(cfg, k) for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                           "vision_end_token_id")}
    for k, v in dims.items():
        setattr(cfg.text_config, k, v)
    cfg.text_config.head_dim = dims["hidden_size"] // dims["num_attention_heads"]
    if getattr(cfg.text_config, "layer_types", None):  # one entry per layer
        cfg.text_config.layer_types = [cfg.text_config.layer_types[0]] * dims["num_hidden_layers"]
    if hasattr(cfg.text_config, "max_window_layers"):
        cfg.text_config.max_window_layers = dims["num_hidden_layers"]
    cfg.text_config.rope_parameters["mrope_section"] = [16, 24, 24]
    cfg.vision_config.out_hidden_size = dims["hidden_size"]
    for k, v in tokens.items():
        setattr(cfg, k, v)
    model = AutoModelForImageTextToText.from_config(cfg, dtype=torch.bfloat16)
    big = out / kind
    model.save_pretrained(big)
    for f in path.iterdir():
        if f.suffix in (".json", ".jinja") and f.name not in ("config.json", "generation_config.json"):
            (big / f.name).write_bytes(f.read_bytes())
    return big


def deepspeed_launch_config(work: Path, stage: int, device: str) -> Path:
    """An accelerate launch config for one process under configs/deepspeed/zero<stage>.json."""
    path = work / f"zero{stage}.yaml"
    path.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\ndeepspeed_config:\n"
        f"  deepspeed_config_file: {ROOT}/configs/deepspeed/zero{stage}.json\n  zero3_init_flag: false\n"
        "num_machines: 1\nnum_processes: 1\nmachine_rank: 0\nmain_process_ip: 127.0.0.1\n"
        f"main_process_port: {29600 + stage}\nmain_training_function: main\nuse_cpu: {str(device == 'cpu').lower()}\n")
    return path


def make_tasks(out: Path, n: int) -> Path:
    import numpy as np
    from PIL import Image

    from data import write_tasks
    from rollout.task import Task

    rng = np.random.default_rng(0)
    tasks = []
    for i in range(n):
        p = out / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)).save(p)
        tasks.append(Task(id=f"b{i}", images=[str(p)], question=f"Describe region {i} of the image.", answer="x",
                          answer_type="text"))
    path = out / "tasks.jsonl"
    write_tasks(path, tasks)
    return path


def run_codevl(a: argparse.Namespace, model: Path, tasks: Path, out: Path) -> dict:
    from train.config import load_config
    from train.config.rl import RLConfig
    from train.rl import run_rl

    dtype = "float32" if a.device == "cpu" else "bfloat16"
    cfg = load_config(RLConfig, ROOT / "configs/rl/tiny_cpu.yaml", [
        f"model.name_or_path={model}", f"data.train_files=[{tasks}]", f"run.output_dir={out}", f"model.dtype={dtype}",
        "model.attn_implementation=sdpa", "rewards=configs/rewards/deepeyes.yaml", "train.resume=never",
        f"train.steps={a.steps}", f"train.prompts_per_step={a.prompts}", f"rollout.num_generations={a.group}",
        "rollout.max_turns=1", f"rollout.max_new_tokens_per_turn={a.max_new}", "algo.filter_all_equal_groups=false",
        "algo.importance_sampling=none", "train.save_rollouts_every=0", "run.save_steps=100000",
        "train.progress_bar=false", f"rollout.hf_max_batch_size={a.prompts * a.group}"])
    res = run_rl(cfg, say=lambda s: None)
    hist = res.history[1:] or res.history
    phases = {k[5:]: sum(m[k] for m in hist) / len(hist) for k in hist[0] if k.startswith("time/")}
    memory = {k[7:]: max(m[k] for m in res.history) for k in hist[0] if k.startswith("memory/")}
    tokens = sum(m["train/loss_tokens"] for m in hist)
    update = sum(m["time/update"] for m in hist)
    return {"phases": phases, "memory_gib": memory, "update_tokens_per_s": tokens / update}


def run_trl(a: argparse.Namespace, model_dir: Path, tasks: Path, out: Path) -> dict:
    import datasets
    import torch
    from PIL import Image
    from trl import GRPOConfig, GRPOTrainer

    from data import read_tasks
    from rollout.protocols import get_protocol
    from train.config.model import ModelConfig
    from train.model.loading import load_model

    proto = get_protocol("codevl")
    rows = []
    for t in read_tasks(tasks):
        msgs = proto.initial_messages(t.question, [(112, 112)])  # an {"type": "image"} part; TRL inserts "image"
        rows.append({"prompt": msgs, "image": Image.open(t.images[0]).convert("RGB")})
    ds = datasets.Dataset.from_list(rows * a.steps)
    dtype = "float32" if a.device == "cpu" else "bfloat16"
    model, processor = load_model(ModelConfig(name_or_path=str(model_dir), dtype=dtype, attn_implementation="sdpa"))
    gen_times: list[float] = []
    step_times: list[float] = []
    tokens: list[int] = []

    class Timed(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):  # noqa: ANN001, ANN202 - timing wrapper
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            gen_times.append(time.perf_counter() - t0)
            tokens.append(int(out["completion_mask"].sum()))
            return out

        def training_step(self, *args, **kw):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            out = super().training_step(*args, **kw)
            step_times.append(time.perf_counter() - t0)
            return out

    def reward(completions, **kw):  # noqa: ANN001, ANN003, ANN202
        return [0.0 for _ in completions]

    args = GRPOConfig(output_dir=str(out), per_device_train_batch_size=a.prompts * a.group, num_generations=a.group,
                      max_completion_length=a.max_new, max_steps=a.steps, learning_rate=1e-6, beta=0.0,
                      logging_steps=1000, save_strategy="no", report_to="none", bf16=a.device != "cpu",
                      gradient_checkpointing=False, use_cpu=a.device == "cpu", seed=0, loss_type="dapo",
                      disable_tqdm=True, temperature=1.0)
    trainer = Timed(model=model, reward_funcs=reward, args=args, train_dataset=ds, processing_class=processor)
    trainer.train()
    del torch
    upd = [s - g for s, g in zip(step_times[1:], gen_times[1:], strict=False)] or [step_times[0] - gen_times[0]]
    toks = tokens[1:] or tokens
    return {"update_tokens_per_s": sum(toks) / sum(upd), "generation_s": sum(gen_times[1:]) / max(len(upd), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model-config", default="tiny", choices=sorted(DIMS))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--max-new", type=int, default=48)
    ap.add_argument("--zero", type=int, choices=[0, 2, 3], default=0, help="DeepSpeed ZeRO stage (0: none)")
    ap.add_argument("--work", default="runs/bench-rl")
    ap.add_argument("--child", choices=["codevl", "trl"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    work = Path(a.work)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"rl_step: cannot use --work {work}: {exc}", file=sys.stderr)
        return 2
    if a.child:
        model, tasks = work / "model-path.txt", work / "tasks-path.txt"
        fn = run_codevl if a.child == "codevl" else run_trl
        res = fn(a, Path(model.read_text()), Path(tasks.read_text()), work / a.child)
        print("RESULT " + json.dumps(res))
        return 0
    (work / "model-path.txt").write_text(str(build_model(a.model_config, work)))
    (work / "tasks-path.txt").write_text(str(make_tasks(work, a.prompts)))
    results = {}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(deepspeed_launch_config(work, a.zero, a.device))] if a.zero else [sys.executable]
    for kind in ("codevl", "trl"):
        cmd = [*launch, __file__, "--child", kind, *sys.argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{kind} failed:\n{proc.stderr[-3000:]}")
            return 1
        results[kind] = json.loads(line[-1][7:])
    ph = results["codevl"]["phases"]
    zero = f", DeepSpeed ZeRO-{a.zero}" if a.zero else ""
    print(f"one RL step, {a.model_config} model on {a.device}{zero}, {a.prompts} x {a.group} episodes, "
          f"<= {a.max_new} tokens:")
    mem = results["codevl"]["memory_gib"]
    for k, v in ph.items():
        peak = mem.get(f"{k}_peak_gib")
        print(f"  {k:<11} {v:8.3f} s" + (f"   peak {peak:6.2f} GiB allocated" if peak is not None else ""))
    if "reserved_gib" in mem:
        print(f"  reserved by the allocator at the end of a step: {mem['reserved_gib']:.2f} GiB")
    outside = ph["step"] - ph["rollout"] - ph["update"]
    print(f"  outside generation and update: {outside / ph['step']:.1%} of the step")
    c, t = results["codevl"]["update_tokens_per_s"], results["trl"]["update_tokens_per_s"]
    print(f"policy update: codevl {c:.0f} tokens/s, TRL GRPOTrainer {t:.0f} tokens/s: {c / t:.2f}x (target >= 1)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): no figures", file=sys.stderr)
        sys.exit(130)
