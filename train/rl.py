"""Stage 2: GRPO on multi-turn code-as-tool episodes, with outcome or dense tool-aware advantages.

    codevl rl --config configs/rl/tiny_cpu.yaml [key.path=value ...] [--dry-run]
    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m train.rl --config configs/rl/tiny_cpu.yaml
    accelerate launch --config_file configs/accelerate/ddp.yaml -m train.rl --config configs/rl/codevision_qwen2_5_vl_7b.yaml

One step, on every process for its share of the step's tasks:
  1. rollout  take the next tasks (the position is checkpointed), run G episodes of each through the episode loop
              (engine + sandbox); every episode id and request seed is unique to the step;
  2. score    the reward set scores every episode and group; episodes whose engine or sandbox failed, or whose
              reward has a failed component (a judge), are masked out, counted and kept in the saved rollouts;
              groups whose rewards are all equal are dropped and refilled by more rollouts (DAPO);
  3. advantage `train.advantages` on the whole step's rewards (gathered across processes);
  4. update   `algo.ppo_epochs` passes in `train.updates_per_step` mini-batches, micro-batched by a token budget;
              trainer logprobs only at sampled positions, chunked (`train.logprobs`); PPO-clipped loss,
              importance-sampling correction against the engine's logprobs, optional KL (`train.losses`);
  5. sync     the engine gets the new weights (the HF engine shares the policy module);
  6. log      metrics.jsonl + trackers (reward per component, tool use, ops, faithfulness, finish reasons, lengths,
              advantages, ratios, clipping, KL, entropy, grad norm, time and CUDA peak memory per phase), the
              tool-collapse alarm;
  7. save     rollouts every `train.save_rollouts_every` steps; a checkpoint every `run.save_steps` that resumes
              exactly (model, optimizer, scheduler, RNG states, data position, step).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rollout.trajectory import Trajectory, save_trajectories
from train.config import ConfigError, resolved_yaml, save_resolved
from train.config.loader import project_path
from train.config.rl import RLConfig
from train.rl_batch import StepBatch, exclusion
from train.run_files import MetricsLog, RunDirError, check_same_config, latest_checkpoint
from train.weight_sync import push_weights
from train.distributed import accelerator_options, full_weights_for_generation, gather_lists, settle_deepspeed, zero_stage
from train.phase_clock import PhaseClock

logger = logging.getLogger(__name__)

STATE_FILE = "rl_state.json"  # written last into a checkpoint folder: its presence marks the checkpoint complete
RESUME_MAY_CHANGE = ("train.resume", "train.progress_bar", "train.steps", "run.report_to")


class RLRunError(RuntimeError):
    """The run cannot go on (too many failed episodes, tool-use collapse with stop_on_collapse, bad data)."""


@dataclass
class RLResult:
    output_dir: Path
    final_dir: Path | None
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


class RLTrainer:
    """The RL stage (see the module docstring). `run()` trains; construction loads everything and resumes."""

    def __init__(self, cfg: RLConfig, *, say: Callable[[str], None] = print, engine: Any = None) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers import get_scheduler

        import sandbox
        from data import read_tasks
        from rewards import load_reward_set
        from rollout.protocols import get_protocol
        from train.model.loading import load_model
        from train.rl_metrics import CollapseMonitor
        from train.task_sampler import TaskSampler

        self.cfg = cfg
        self.run_dir = Path(cfg.run.output_dir)
        trackers = [x for x in cfg.run.report_to if x != "none"]
        self.acc = Accelerator(log_with=trackers or None, project_dir=str(self.run_dir), **accelerator_options())
        self.say = say if self.acc.is_main_process else (lambda _s: None)
        world, B = self.acc.num_processes, cfg.train.prompts_per_step
        if B % world:
            raise ConfigError(f"train.prompts_per_step ({B}) must be divisible by the number of processes ({world})")
        check_same_config(self.run_dir, _plain(cfg), ignore=RESUME_MAY_CHANGE)
        tasks = [t for f in cfg.data.train_files for t in read_tasks(str(project_path(f)))]
        self.reward_set = load_reward_set(str(project_path(cfg.rewards)))
        self.protocol = get_protocol(cfg.rollout.protocol)
        set_seed(cfg.run.seed)
        model, self.processor = load_model(cfg.model)
        _disable_dropout(model)
        params = [p for p in model.parameters() if p.requires_grad]
        o = cfg.optim
        optimizer = torch.optim.AdamW(params, lr=o.lr, betas=(o.adam_beta1, o.adam_beta2), eps=o.adam_epsilon,
                                      weight_decay=o.weight_decay)
        updates = cfg.train.steps * cfg.train.updates_per_step * cfg.algo.ppo_epochs
        scheduler = get_scheduler(o.scheduler, optimizer, num_warmup_steps=int(o.warmup_ratio * updates),
                                  num_training_steps=updates)
        model.train()  # dropout is off; train mode keeps gradient checkpointing active where configured
        settle_deepspeed(self.acc, max_grad_norm=cfg.optim.max_grad_norm, dtype=cfg.model.dtype)
        self.model, self.optimizer, self.scheduler = self.acc.prepare(model, optimizer, scheduler)
        self.ref = self._reference(cfg) if cfg.algo.kl_coef > 0 else None
        self.engine = engine or self._engine()
        self.pool = sandbox.SandboxPool(sandbox.SandboxConfig())
        self.sampler = TaskSampler(tasks, seed=cfg.run.seed)
        self.monitor = CollapseMonitor(baseline_steps=cfg.monitor.baseline_steps, fraction=cfg.monitor.collapse_fraction)
        self.log = MetricsLog(self.run_dir, enabled=self.acc.is_main_process)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._resume()
        if self.acc.is_main_process:
            save_resolved(cfg, self.run_dir)
        if trackers:
            self.acc.init_trackers("codevl-rl", config=_plain(cfg))
        self.say(f"[rl] {len(tasks)} tasks, {B} x {cfg.rollout.num_generations} episodes per step on {world} "
                 f"process(es), reward set {self.reward_set.name!r}, advantages {cfg.algo.advantage}")

    # ---- setup -----------------------------------------------------------------------------------------------

    def _engine(self) -> Any:
        """The rollout engine: the HF engine shares the policy module; vLLM gets weights pushed after each update."""
        from rollout.engines.registry import create_engine

        r = self.cfg.rollout
        if r.engine == "hf":
            return create_engine("hf", self.acc.unwrap_model(self.model), self.processor,
                                 max_batch_size=r.hf_max_batch_size)
        if r.engine == "vllm_colocate":
            v = r.vllm
            return create_engine("vllm_colocate", self.cfg.model.name_or_path, processor=self.processor,
                                 tensor_parallel_size=v.tensor_parallel_size, gpu_memory_utilization=v.gpu_memory_utilization,
                                 max_model_len=v.max_model_len, enable_sleep_mode=v.enable_sleep_mode,
                                 seed=self.cfg.run.seed + self.acc.process_index, max_images_per_prompt=r.max_images)
        return create_engine("vllm_server", r.vllm.server_url, self.processor, seed=self.cfg.run.seed)

    def _reference(self, cfg: RLConfig) -> Any:
        """A frozen copy of the initial policy, or none with LoRA (the base model with the adapter disabled)."""
        if cfg.model.lora is not None:
            return "adapter_disabled"
        from train.model.loading import load_model

        ref, _ = load_model(cfg.model.model_copy(update={"gradient_checkpointing": False}))
        ref.requires_grad_(False)
        ref.eval()
        if zero_stage(self.acc):  # sharded like the policy under ZeRO-3, whole on each process under ZeRO-2
            from trl.models.utils import prepare_deepspeed

            return prepare_deepspeed(ref, self.acc)
        return ref.to(self.acc.device)

    def _resume(self) -> None:
        r = self.cfg.train.resume
        if r == "never":
            return
        ckpt = latest_checkpoint(self.run_dir, STATE_FILE) if r == "auto" else Path(r)
        if ckpt is None:
            return
        if not (ckpt / STATE_FILE).is_file():
            raise RunDirError(f"train.resume={r}: {ckpt} is not a complete checkpoint (no {STATE_FILE})")
        self.acc.load_state(str(ckpt))
        state = json.loads((ckpt / STATE_FILE).read_text())
        self.step = int(state["step"])
        self.sampler.load_state_dict(state["sampler"])
        self.monitor.load_state_dict(state["monitor"])
        self.say(f"[rl] resumed from {ckpt} at step {self.step}")

    # ---- one step --------------------------------------------------------------------------------------------

    def collect(self, step: int) -> StepBatch:
        """Rollouts for this process's share of the step, scored; refilled while groups are uninformative."""
        from rollout import EpisodeLimits, SamplingParams, run_episodes
        from train.advantages import fill_groups, informative_groups

        c, a, world, rank = self.cfg, self.cfg.algo, self.acc.num_processes, self.acc.process_index
        r = c.rollout
        limits = EpisodeLimits(max_turns=r.max_turns, max_new_tokens_per_turn=r.max_new_tokens_per_turn,
                               max_total_tokens=r.max_total_tokens, max_images=r.max_images,
                               observation_max_chars=r.observation_max_chars, code_timeout_s=r.code_timeout_s)
        sampling = SamplingParams(temperature=r.temperature, top_p=r.top_p, top_k=r.top_k)
        need = c.train.prompts_per_step // world
        trajs: list[Trajectory] = []
        breakdowns: list[Any] = []
        candidates: list[str] = []
        informative: set[str] = set()
        rounds = 0
        while True:
            mine = self.sampler.take(c.train.prompts_per_step)[rank::world]
            new = asyncio.run(run_episodes(
                mine, self.engine, protocol=self.protocol, pool=self.pool, limits=limits, sampling=sampling,
                samples_per_task=r.num_generations, max_concurrent=r.max_concurrent_episodes, seed=c.run.seed,
                group_prefix=f"s{step}.{rounds}.r{rank}/",
                metadata={"step": step, "weights_version": getattr(self.engine, "weights_version", None)}))
            scored = self.reward_set.score(new)
            trajs += new
            breakdowns += scored
            candidates += list(dict.fromkeys(t.group_id for t in new))  # type: ignore[misc]
            valid = [exclusion(t, b, a.mask_truncated) is None for t, b in zip(new, scored, strict=True)]
            informative |= informative_groups([b.total for b in scored], [t.group_id for t in new], valid)  # type: ignore[arg-type]
            rounds += 1
            have = len(fill_groups(candidates, informative, need)) if a.filter_all_equal_groups else need  # type: ignore[arg-type]
            if self._global_min(have) >= need or rounds > a.max_refill_rounds:
                break
        keep = set(fill_groups(candidates, informative, need)) if a.filter_all_equal_groups else set(candidates)  # type: ignore[arg-type]
        excluded = [exclusion(t, b, a.mask_truncated) or (None if t.group_id in keep else "group_filtered")
                    for t, b in zip(trajs, breakdowns, strict=True)]
        return StepBatch(trajs, breakdowns, excluded, len(set(candidates) - keep), rounds)

    def advantages(self, batch: StepBatch) -> tuple[list[float], list[np.ndarray | None]]:
        """Per episode of this process: (episode advantage, step advantages or None), from the whole step."""
        from train.advantages import dense_step_advantages, outcome_advantages

        a = self.cfg.algo
        local = [(b.total, b.episode, list(b.steps), t.group_id, x is None)
                 for t, b, x in zip(batch.trajectories, batch.breakdowns, batch.excluded, strict=True)]
        per_rank = gather_lists(local, self.acc.num_processes)
        offset = sum(len(x) for x in per_rank[: self.acc.process_index])
        everyone = [row for rows in per_rank for row in rows]
        totals, episode, steps, groups, valid = zip(*everyone, strict=True) if everyone else ((),) * 5
        if a.advantage == "outcome":
            adv = outcome_advantages(totals, groups, valid, scale=a.scale_rewards)
            step_adv: list[np.ndarray | None] = [None] * len(everyone)
        else:
            adv = outcome_advantages(episode, groups, valid, scale=a.scale_rewards)
            step_adv = list(dense_step_advantages([np.asarray(s) for s in steps], groups, valid,
                                                  normalise=a.step_normalise, reward_to_go=a.step_reward_to_go,
                                                  gamma=a.step_gamma, scale=a.scale_rewards))
        n = len(local)
        return [float(x) for x in adv[offset:offset + n]], step_adv[offset:offset + n]

    def update(self, batch: StepBatch, ep_adv: Sequence[float], step_adv: Sequence[Any]) -> dict[str, float]:
        """`ppo_epochs` passes of `updates_per_step` optimizer steps over this step's samples."""
        import torch

        from rollout.image_cache import ProcessedImages
        from train.rl_batch import make_sample, micro_batches, split_minibatches

        c, a = self.cfg, self.cfg.algo
        # each of the step's images processed once: the HF engine has processed them already (same processor)
        pixels = getattr(self.engine, "image_cache", None) or ProcessedImages(self.processor)
        samples = [make_sample(i, t, self.processor, episode_adv=ep_adv[i], step_adv=step_adv[i],
                               step_coef=a.step_advantage_coef, pixels=pixels)
                   for i, (t, x) in enumerate(zip(batch.trajectories, batch.excluded, strict=True)) if x is None]
        parts = split_minibatches(len(samples), c.train.updates_per_step, seed=c.run.seed + self.step)
        placeholder = next((t for t in batch.trajectories if t.tokenized), None)
        if placeholder is None:
            raise RLRunError("no episode of this step produced any tokens; see the saved rollouts' errors")
        needs_old = a.ppo_epochs > 1 or c.train.updates_per_step > 1
        filler = self._filler(placeholder, pixels)
        with torch.no_grad():
            if needs_old or self.ref is not None:
                for mb in self._in_step(micro_batches(samples, c.train.max_tokens_per_microbatch, seed=self.step),
                                        filler):
                    self._store_logprobs(mb, old=needs_old)
        stats: Counter[str] = Counter()
        weight = 0.0
        losses: list[float] = []
        grad_norms: list[float] = []
        for epoch in range(a.ppo_epochs):
            for part in parts:
                chosen = [samples[i] for i in part] or [filler]
                tokens = self._global_sum(sum(s.num_loss_tokens for s in chosen))
                seqs = self._global_sum(sum(1 for s in chosen if s.weight))
                if tokens == 0:  # nothing to learn from on any process: no step (Adam's momentum would still move)
                    self.scheduler.step()
                    continue
                micro = self._in_step(micro_batches(chosen, c.train.max_tokens_per_microbatch,
                                                    seed=self.step * 97 + epoch), filler)
                share = 0.0
                for k, mb in enumerate(micro):
                    sync = k == len(micro) - 1
                    self.acc.sync_gradients = sync  # DeepSpeed steps at the boundary of the mini-batch only
                    with contextlib.nullcontext() if sync else self.acc.no_sync(self.model):
                        m = self._micro_step(mb, tokens, seqs, needs_old)
                    share += m.pop("loss_share")
                    w = float(sum(s.num_loss_tokens for s in mb))
                    if w:  # a filler's statistics (of no tokens) are not averaged in
                        for key, v in m.items():
                            stats[key] += v * w  # type: ignore[assignment]
                        weight += w
                # this process's share of the mini-batch loss; their mean over processes is the loss
                losses.append(share)
                grad_norms.append(float(self.acc.clip_grad_norm_(self.model.parameters(), c.optim.max_grad_norm)))
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
        out = {k: v / weight for k, v in stats.items()} if weight else {}
        out["loss"] = float(np.mean(losses)) if losses else 0.0
        if grad_norms:
            out["grad_norm"] = float(np.mean(grad_norms))
        out["lr"] = float(self.scheduler.get_last_lr()[0])
        out["train/samples"] = float(len(samples))
        out["train/optimizer_steps"] = float(len(grad_norms))
        out["train/loss_tokens"] = float(sum(s.num_loss_tokens for s in samples) * a.ppo_epochs)
        return out

    def _filler(self, placeholder: Trajectory, pixels: Any) -> Any:
        """A sample with no loss (weight 0) that runs a forward and backward where this process has no work left."""
        import torch

        from train.rl_batch import make_sample

        s = make_sample(-1, placeholder, self.processor, episode_adv=0.0, step_adv=None, step_coef=0.0, weight=0.0,
                        pixels=pixels)
        s.tensors["old_logprobs"] = torch.zeros(s.length)
        s.tensors["ref_logprobs"] = torch.zeros(s.length)
        return s

    def _in_step(self, micro: list[list[Any]], filler: Any) -> list[list[Any]]:
        """`micro` padded with filler micro-batches to the largest count on any process: every forward and backward
        is a collective under DDP (buffer broadcast) and DeepSpeed ZeRO-2/3 (gradient reduction, ZeRO-3 parameter
        gathers), so every process must run the same number of them or the step hangs."""
        if self.acc.num_processes == 1:
            return micro
        import torch

        most = int(self.acc.reduce(torch.tensor(len(micro), device=self.acc.device), reduction="max"))
        return micro + [[filler]] * (most - len(micro))

    def _store_logprobs(self, mb: Sequence[Any], *, old: bool) -> None:
        """Trainer logprobs of the current (old) policy and of the reference, stored on the samples."""
        from train.logprobs import token_logprobs
        from train.rl_batch import collate

        batch = collate(mb, self.processor.tokenizer.pad_token_id)
        kw = {"temperature": self.cfg.rollout.temperature, "loss_mask": batch["loss_mask"],
              "chunk_size": self.cfg.algo.logprob_chunk_size}
        outs = {}
        if old:
            outs["old_logprobs"] = token_logprobs(self.model, batch, **kw)
        if self.ref is not None:
            if self.ref == "adapter_disabled":
                with self.acc.unwrap_model(self.model).disable_adapter():
                    outs["ref_logprobs"] = token_logprobs(self.model, batch, **kw)
            else:
                outs["ref_logprobs"] = token_logprobs(self.ref, batch, **kw)
        for key, value in outs.items():
            for j, s in enumerate(mb):
                s.tensors[key] = value[j, : s.length].detach().float().cpu()

    def _micro_step(self, mb: Sequence[Any], tokens: float, seqs: float, has_old: bool) -> dict[str, float]:
        from train.logprobs import token_logprobs
        from train.losses import aggregate, importance_weights, kl_penalty, policy_loss
        from train.rl_batch import collate

        a, world = self.cfg.algo, self.acc.num_processes
        batch = {k: (v.to(self.acc.device) if hasattr(v, "to") else v)
                 for k, v in collate(mb, self.processor.tokenizer.pad_token_id).items()}
        mask = batch["loss_mask"] * _weights_like([s.weight for s in mb], batch["loss_mask"])[:, None]
        logp, ent = token_logprobs(self.model, batch, temperature=self.cfg.rollout.temperature, loss_mask=mask,
                                   chunk_size=a.logprob_chunk_size, with_entropy=True)
        old = batch["old_logprobs"] if has_old else logp.detach()
        m: dict[str, float] = {}
        is_w = None
        if a.importance_sampling != "none":
            is_w, im = importance_weights(old, batch["engine_logprobs"], mask, mode=a.importance_sampling,
                                          level=a.importance_sampling_level, cap=a.importance_sampling_cap)
            m.update({f"is/{k}": float(v) for k, v in im.items()})
        # each process's share of the whole mini-batch's normaliser; DDP averages gradients over processes
        norm = {"total_tokens": max(tokens, 1.0) / world, "total_sequences": max(seqs, 1.0) / world}
        loss, pm = policy_loss(logp, old, batch["advantages"], mask, clip_low=a.clip_low, clip_high=a.clip_high,
                               dual_clip=a.dual_clip, ratio_level=a.ratio_level, aggregation=a.loss_type,
                               max_tokens=self.cfg.rollout.max_total_tokens, is_weights=is_w, **norm)
        m.update({f"policy/{k}": float(v) for k, v in pm.items()})
        if self.ref is not None:
            kl_tok = kl_penalty(logp, batch["ref_logprobs"], a.kl_estimator)
            loss = loss + a.kl_coef * aggregate(kl_tok, mask, aggregation=a.loss_type,
                                                max_tokens=self.cfg.rollout.max_total_tokens, **norm)
            m["kl"] = float(aggregate(kl_tok.detach(), mask))
        self.acc.backward(loss)
        m["entropy"] = float(aggregate(ent.detach(), mask))
        return {**m, "loss_share": float(loss.detach())}

    # ---- bookkeeping -----------------------------------------------------------------------------------------

    def _global_sum(self, x: float) -> float:
        if self.acc.num_processes == 1:
            return float(x)
        import torch

        return float(self.acc.reduce(torch.tensor(float(x), device=self.acc.device), reduction="sum"))

    def _global_min(self, x: int) -> int:
        if self.acc.num_processes == 1:
            return int(x)
        import torch

        t = self.acc.gather(torch.tensor([int(x)], device=self.acc.device))
        return int(t.min())

    def metrics(self, batch: StepBatch, ep_adv: Sequence[float], upd: dict[str, float],
                clock: dict[str, float]) -> dict[str, float]:
        from rewards import batch_metrics
        from train.rl_metrics import episode_metrics

        trajs = batch.trajectories
        reasons = Counter(x.split(":")[0] for x in batch.excluded if x and x != "group_filtered")
        local = {**batch_metrics(trajs), **episode_metrics(trajs)}
        local.update({f"excluded/{k}": v / len(trajs) for k, v in reasons.items()})
        local["excluded/group_filtered"] = sum(x == "group_filtered" for x in batch.excluded) / len(trajs)
        trained = [x for x, e in zip(ep_adv, batch.excluded, strict=True) if e is None]
        if trained:
            local.update({"adv/mean": float(np.mean(trained)), "adv/std": float(np.std(trained)),
                          "adv/abs_max": float(np.max(np.abs(trained)))})
        local["rollout/refill_rounds"] = float(batch.rounds)
        m = self._mean_over_processes(local)
        m.update(upd)
        m.update(clock)  # time/<phase>, and memory/<phase>_peak_gib on CUDA (this process's)
        return m

    def _mean_over_processes(self, local: dict[str, float]) -> dict[str, float]:
        if self.acc.num_processes == 1:
            return local
        rows = [r for rows in gather_lists([local], self.acc.num_processes) for r in rows]
        keys = sorted({k for r in rows for k in r})
        return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}

    def save(self) -> Path:
        ckpt = self.run_dir / f"checkpoint-{self.step}"
        self.acc.save_state(str(ckpt))
        if self.acc.is_main_process:
            state = {"step": self.step, "sampler": self.sampler.state_dict(), "monitor": self.monitor.state_dict()}
            (ckpt / STATE_FILE).write_text(json.dumps(state) + "\n")
            limit = self.cfg.run.save_total_limit
            older = sorted((p for p in self.run_dir.glob("checkpoint-*") if (p / STATE_FILE).is_file() and p != ckpt),
                           key=lambda p: int(p.name.split("-")[1]))
            for p in older[: max(0, len(older) - (limit - 1))] if limit else []:
                shutil.rmtree(p, ignore_errors=True)
        self.acc.wait_for_everyone()
        return ckpt

    def save_rollouts(self, batch: StepBatch, step: int) -> None:
        rank = self.acc.process_index
        name = f"step_{step:06d}.jsonl" if rank == 0 else f"step_{step:06d}.r{rank}.jsonl"
        for t, x in zip(batch.trajectories, batch.excluded, strict=True):
            t.metadata["excluded"] = x
        save_trajectories(self.run_dir / "rollouts" / name, batch.trajectories)

    # ---- the loop --------------------------------------------------------------------------------------------

    def run(self, *, stop_after: int | None = None) -> RLResult:
        """Train until `train.steps` (or, for tests, return right after the checkpoint of step `stop_after`)."""
        from tqdm.auto import tqdm

        c = self.cfg
        bar = tqdm(total=c.train.steps, initial=self.step, desc="rl", unit="step",
                   disable=not (c.train.progress_bar and self.acc.is_main_process))
        try:
            while self.step < c.train.steps:
                clock = PhaseClock(self.acc.device)
                t0 = time.perf_counter()
                with clock.phase("rollout"), self._generating():
                    batch = self.collect(self.step + 1)
                clock.add("sandbox", float(sum(t.metadata.get("sandbox_s", 0.0) for t in batch.trajectories)))
                self._check_failures(batch)
                with clock.phase("advantages"):
                    ep_adv, step_adv = self.advantages(batch)
                with clock.phase("update"):
                    upd = self.update(batch, ep_adv, step_adv)
                with clock.phase("sync"):
                    push_weights(self.model, self.engine, accelerator=self.acc)
                self.step += 1
                clock.add("step", time.perf_counter() - t0)
                m = self.metrics(batch, ep_adv, upd, clock.metrics())
                self.history.append(m)
                self.log.write(self.step, m)
                if c.run.report_to != ["none"]:
                    self.acc.log(m, step=self.step)
                if c.train.save_rollouts_every and self.step % c.train.save_rollouts_every == 0:
                    self.save_rollouts(batch, self.step)
                alarm = self.monitor.update(m.get("tools/any_call_rate", 0.0))
                bar.update(1)
                bar.set_postfix(reward=f"{m.get('reward/total/mean', 0.0):.3f}", loss=f"{m.get('loss', 0.0):.4f}",
                                tools=f"{m.get('tools/any_call_rate', 0.0):.2f}")
                if self.step % c.run.save_steps == 0 or self.step == c.train.steps:
                    self.save()
                if alarm:
                    logger.warning(alarm)
                    self.say(f"[rl] step {self.step}: {alarm}")
                    if c.monitor.stop_on_collapse:
                        self.save()
                        raise RLRunError(alarm + "; stopped (monitor.stop_on_collapse); the last checkpoint is kept")
                if stop_after is not None and self.step >= stop_after:
                    return RLResult(self.run_dir, None, self.step, self.history)
        finally:
            bar.close()
            self.pool.close()
        final = self.export()
        self.acc.end_training()
        return RLResult(self.run_dir, final, self.step, self.history)

    @contextlib.contextmanager
    def _generating(self) -> Any:
        """The engine ready to generate for the body: the HF engine's shared module with its full weights under
        ZeRO-3 (`full_weights_for_generation`); a colocated vLLM engine woken, and put back to sleep after so that
        its memory goes to the trainer during the update."""
        if self.cfg.rollout.engine == "hf":
            with full_weights_for_generation(self.model, self.acc):
                yield
            return
        sleeps = self.cfg.rollout.engine == "vllm_colocate" and self.cfg.rollout.vllm.enable_sleep_mode
        if sleeps:
            self.engine.wake_up()
        try:
            yield
        finally:
            if sleeps:
                self.engine.sleep()

    def _check_failures(self, batch: StepBatch) -> None:
        failed = [x for x in batch.excluded if x and x not in ("truncated", "group_filtered")]
        share = self._global_sum(len(failed)) / max(self._global_sum(len(batch.excluded)), 1.0)
        if share > self.cfg.algo.max_failed_fraction:
            self.save_rollouts(batch, self.step + 1)
            reasons = Counter(x.split(":")[0] for x in failed)
            raise RLRunError(f"step {self.step + 1}: {share:.0%} of episodes failed ({dict(reasons)}), more than "
                             f"algo.max_failed_fraction={self.cfg.algo.max_failed_fraction}; their errors are in "
                             f"{self.run_dir / 'rollouts'}")

    def export(self) -> Path:
        """The final policy in Hugging Face format (`final/`), LoRA merged when `train.merge_lora`."""
        from train.export import merge_adapter

        final = self.run_dir / "final"
        model = self.acc.unwrap_model(self.model)
        state = self.acc.get_state_dict(self.model)  # a collective under ZeRO-3: the full weights, on the main process
        if self.acc.is_main_process:
            if self.cfg.model.lora is not None:
                model.save_pretrained(self.run_dir / "adapter", state_dict=state)  # PEFT keeps the adapter's part
                self.processor.save_pretrained(self.run_dir / "adapter")
                if self.cfg.train.merge_lora:
                    merge_adapter(self.cfg.model, self.run_dir / "adapter", final, self.processor)
                else:
                    final = self.run_dir / "adapter"
            else:
                model.save_pretrained(final, state_dict=state)
                self.processor.save_pretrained(final)
        self.acc.wait_for_everyone()
        self.say(f"[rl] {self.step} steps; final model in {final}")
        return final


def _weights_like(values: Sequence[float], like: Any) -> Any:
    import torch

    return torch.tensor(values, dtype=like.dtype, device=like.device)


def _disable_dropout(model: Any) -> None:
    """Dropout off: the engine samples without it, so the trainer's logprobs must be computed without it too."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _plain(cfg: RLConfig) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(resolved_yaml(cfg))


def run_rl(cfg: RLConfig, *, say: Callable[[str], None] = print, engine: Any = None,
           stop_after: int | None = None) -> RLResult:
    """Build the trainer for `cfg` and run it (see `RLTrainer`)."""
    return RLTrainer(cfg, say=say, engine=engine).run(stop_after=stop_after)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m train.rl --config X [overrides] [--dry-run]` (what `accelerate launch -m train.rl` runs): the
    same command as `codevl rl`, through the command line's one error and Ctrl-C policy (`train.cli`)."""
    from train.cli import main as cli_main

    return cli_main(["rl", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
