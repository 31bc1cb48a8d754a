"""The CPU demo: the whole pipeline that exists so far, end to end, on the tiny model and generated data.

    codevl demo                                    # defaults (configs/demo/cpu.yaml holds the same values)
    codevl demo --config configs/demo/cpu.yaml rollout.samples_per_task=8 rewards=configs/rewards/tapo.yaml
    codevl demo --dry-run                          # print the resolved config

Stages, each written under `output_dir`:
1. model: a tiny Qwen-VL model built offline (`tiny-model/`), loaded by the loader that loads real checkpoints;
2. data: synthetic tasks from each generator (`data/<generator>/tasks.jsonl` + images);
3. oracle: correct code-as-tool trajectories for those tasks, every block executed in the real sandbox
   (`sft/oracle.jsonl`): the SFT data;
4. sft: full-batch AdamW on the oracle trajectories, loss on assistant tokens only (`train.fit`); the fitted model
   is saved (`sft-model/`, loadable by `codevl infer --engine hf --model OUTPUT_DIR/sft-model`);
5. rollout: `samples_per_task` episodes per task (a GRPO group) through the concurrent episode loop, the HF engine
   and the sandbox, token-exact with sampling logprobs (`trajectories/rollouts.jsonl`);
6. rewards: the reward set scored on every trajectory and group, recorded in each trajectory (so
   `codevl rescore OUTPUT_DIR --rewards configs/rewards/X.yaml` re-scores the run under another set);
7. `summary.json`: timings, SFT losses, finish reasons, code steps and their statuses, reward, tool and
   faithfulness metrics, and the reward spread within groups (the signal GRPO's advantages are made of).

A few-hundred-thousand-parameter model cannot read text off an image: what the demo shows is the machinery (it
learns the oracle's format and tool use in seconds, its answers are mostly wrong), not accuracy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train.config import save_resolved
from train.config.demo import DemoConfig
from train.config.model import ModelConfig

logger = logging.getLogger(__name__)


def _stage(timings: dict[str, float], name: str, say: Callable[[str], None]) -> Callable[[str], None]:
    t0 = time.perf_counter()

    def done(message: str) -> None:
        timings[name] = round(time.perf_counter() - t0, 2)
        say(f"[{name}] {message} ({timings[name]:.1f} s)")

    return done


def make_tasks(cfg: DemoConfig, out: Path) -> list[Any]:
    """`tasks_per_generator` tasks from each configured generator, written under `out/data/`."""
    from data import read_tasks
    from data.generators import generate_to_dir

    tasks = []
    for i, name in enumerate(cfg.data.generators):
        res = generate_to_dir(name, cfg.data.tasks_per_generator, out / "data" / name, seed=cfg.seed + i,
                              config=cfg.data.generator_config.get(name), workers=1, progress=False)
        tasks += read_tasks(res.path)
    return tasks


def group_spread(trajectories: list[Any]) -> dict[str, float]:
    """How much reward varies within GRPO groups: groups with any spread give a learning signal."""
    groups: dict[str, list[float]] = {}
    for t in trajectories:
        if t.reward:
            groups.setdefault(t.group_id, []).append(float(t.reward["total"]))
    if not groups:
        return {}
    stds = [statistics.pstdev(v) for v in groups.values()]
    return {"groups": len(groups), "groups_with_spread": sum(s > 1e-9 for s in stds),
            "mean_within_group_std": round(sum(stds) / len(stds), 4)}


def run_demo(cfg: DemoConfig, say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the demo; returns a summary (also written to output_dir/summary.json). `say` receives progress lines."""
    import torch

    import sandbox
    from data.oracle import build_oracle_trajectories
    from rewards import batch_metrics, load_reward_set
    from rewards.rescore import RescoreSummary, format_table
    from rollout.engines.base import SamplingParams
    from rollout.engines.hf import HFEngine
    from rollout.loop import EpisodeLimits, run_episodes
    from rollout.pretty import format_trajectory
    from rollout.protocols import get_protocol
    from rollout.trajectory import save_trajectories
    from train.fit import fit_trajectories
    from train.model.loading import load_model
    from train.model.tiny import build_tiny_model

    torch.manual_seed(cfg.seed)
    out = Path(cfg.output_dir)
    save_resolved(cfg, out)
    reward_set = load_reward_set(cfg.rewards)  # a bad reward file fails before any work
    protocol = get_protocol(cfg.protocol)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    done = _stage(timings, "model", say)
    model_dir = build_tiny_model(cfg.arch, out / "tiny-model", seed=cfg.seed)
    model, processor = load_model(ModelConfig(name_or_path=str(model_dir), dtype="float32",
                                              attn_implementation="eager", freeze_vision_tower=False,
                                              freeze_projector=False))
    n_params = sum(p.numel() for p in model.parameters())
    done(f"tiny {cfg.arch}: {n_params:,} parameters in {model_dir}")

    done = _stage(timings, "data", say)
    tasks = make_tasks(cfg, out)
    done(f"{len(tasks)} synthetic tasks ({', '.join(cfg.data.generators)}) in {out / 'data'}")

    pool = sandbox.SandboxPool(sandbox.SandboxConfig())
    try:
        done = _stage(timings, "oracle", say)
        oracle = build_oracle_trajectories(tasks, protocol=protocol, pool=pool, variants=cfg.data.oracle_variants,
                                           seed=cfg.seed, progress=False)
        if not oracle.trajectories:
            raise RuntimeError(f"no oracle trajectory passed its check: {oracle.summary()}")
        save_trajectories(out / "sft" / "oracle.jsonl", oracle.trajectories)
        layers = pool.layers.summary() if pool.layers else "unknown"
        done(f"{oracle.summary()}; every block ran in the sandbox ({layers})")

        done = _stage(timings, "sft", say)
        losses = fit_trajectories(model, processor, oracle.trajectories, steps=cfg.sft.steps, lr=cfg.sft.lr,
                                  seed=cfg.seed)
        model.save_pretrained(out / "sft-model")
        processor.save_pretrained(out / "sft-model")
        done(f"{cfg.sft.steps} full-batch steps on {len(oracle.trajectories)} trajectories: "
             f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; saved to {out / 'sft-model'}")

        done = _stage(timings, "rollout", say)
        r = cfg.rollout
        engine = HFEngine(model, processor, max_batch_size=max(1, len(tasks) * r.samples_per_task))
        limits = EpisodeLimits(max_turns=r.max_turns, max_new_tokens_per_turn=r.max_new_tokens_per_turn,
                               max_total_tokens=r.max_total_tokens)
        trajs = asyncio.run(run_episodes(tasks, engine, protocol=protocol, pool=pool, limits=limits,
                                         sampling=SamplingParams(temperature=r.temperature),
                                         samples_per_task=r.samples_per_task, seed=cfg.seed, progress=False))
        steps = [s for t in trajs for s in t.steps]
        statuses = Counter(s.result.status.value if s.result is not None else "not_run" for s in steps)
        done(f"{len(trajs)} episodes ({r.samples_per_task} per task) in {engine.stats['batches']} generation "
             f"batches; {len(steps)} code blocks: {dict(statuses)}")
    finally:
        pool.close()

    done = _stage(timings, "rewards", say)
    breakdowns = reward_set.score(trajs)
    run_file = out / "trajectories" / "rollouts.jsonl"
    save_trajectories(run_file, trajs)
    metrics = batch_metrics(trajs)
    done(f"reward set {reward_set.name!r} scored; trajectories in {run_file}")
    say(format_table(RescoreSummary(reward_set, [run_file], breakdowns=breakdowns)))
    example = max(trajs, key=lambda t: (len(t.steps), t.reward["total"] if t.reward else 0.0))
    say(format_trajectory(example, max_chars=2500))

    summary = {
        "output_dir": str(out),
        "arch": cfg.arch,
        "parameters": n_params,
        "tasks": len(tasks),
        "oracle": {"trajectories": len(oracle.trajectories), "failed_checks": len(oracle.failures),
                   "variants": dict(Counter(t.metadata.get("oracle_variant") for t in oracle.trajectories))},
        "sft_losses": [round(x, 4) for x in losses],
        "sft_model": str(out / "sft-model"),
        "rollout": {
            "episodes": len(trajs),
            "finish_reasons": dict(Counter(t.finish_reason.value for t in trajs if t.finish_reason)),
            "code_steps": len(steps),
            "code_step_status": dict(statuses),
            "sampled_tokens": sum(sum(t.loss_mask) for t in trajs),
            "generation_batches": engine.stats["batches"],
        },
        "rewards": {"reward_set": reward_set.name, "total_mean": round(sum(b.total for b in breakdowns) / len(breakdowns), 4),
                    **group_spread(trajs)},
        "metrics": {k: round(v, 4) for k, v in sorted(metrics.items())},
        "timings_s": timings,
        "seconds": round(time.perf_counter() - t_all, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
