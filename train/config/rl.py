"""The RL stage's config (stage 2: GRPO with outcome or dense tool-aware advantages, rollouts from an engine).

    codevl rl --config configs/rl/tiny_cpu.yaml [key.path=value ...] [--dry-run]

Geometry of one step: `train.prompts_per_step` tasks x `rollout.num_generations` episodes, scored, turned into
advantages, then `algo.ppo_epochs` passes over them in `train.updates_per_step` mini-batches (one optimizer step
each), each mini-batch cut into micro-batches of at most `train.max_tokens_per_microbatch` padded tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from train.config.base import StrictModel
from train.config.model import ModelConfig
from train.config.run import OptimConfig, RunConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class VLLMConfig(StrictModel):
    """vLLM settings (GPU nodes only). Colocated: shares the trainer's GPUs and sleeps during updates."""

    gpu_memory_utilization: float = Field(0.4, gt=0.0, le=1.0)
    tensor_parallel_size: int = Field(1, gt=0)
    enable_sleep_mode: bool = True
    server_url: str | None = Field(None, description="base URL of a `vllm serve` for engine=vllm_server")
    max_model_len: int = Field(32768, gt=0)


class RolloutConfig(StrictModel):
    """How episodes are generated: engine, group size, sampling, and the episode limits."""

    engine: Literal["hf", "vllm_colocate", "vllm_server"] = "vllm_colocate"
    protocol: str = Field("codevl", min_length=1)
    num_generations: int = Field(8, ge=2, description="G: rollouts per task (the GRPO group)")
    temperature: float = Field(1.0, gt=0.0, le=2.0, description="vLLM refuses temperatures above 2")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0: no top-k")
    max_turns: int = Field(12, gt=0)
    max_new_tokens_per_turn: int = Field(2048, gt=0)
    max_total_tokens: int = Field(16384, gt=0, description="per episode, unexpanded (images count one token)")
    max_images: int = Field(16, gt=0)
    observation_max_chars: int | None = Field(None, gt=0, description="default: the protocol's")
    code_timeout_s: float | None = Field(None, gt=0, description="default: the protocol's")
    max_concurrent_episodes: int | None = Field(None, gt=0, description="per process; default: all of a step")
    hf_max_batch_size: int = Field(64, gt=0, description="HF engine: requests per generation batch")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)

    @model_validator(mode="after")
    def _limits(self) -> RolloutConfig:
        if self.max_new_tokens_per_turn > self.max_total_tokens:
            raise ValueError(
                f"rollout.max_new_tokens_per_turn ({self.max_new_tokens_per_turn}) exceeds rollout.max_total_tokens "
                f"({self.max_total_tokens}); lower the first or raise the second"
            )
        if self.engine == "vllm_server" and not self.vllm.server_url:
            raise ValueError("rollout.engine=vllm_server needs rollout.vllm.server_url (e.g. http://host:8000)")
        return self


class GRPOConfig(StrictModel):
    """The policy-gradient objective: advantages, clipping, normalisation, KL, off-policy correction, filters."""

    advantage: Literal["outcome", "dense"] = Field(
        "outcome", description="outcome: one scalar per episode (the papers); dense: plus per-step advantages")
    scale_rewards: Literal["group", "batch", "none"] = Field("group", description="std normalisation of advantages")
    step_normalise: Literal["pooled", "per_index"] = Field("pooled", description="dense: how step rewards are centred")
    step_reward_to_go: bool = Field(False, description="dense: discounted reward-to-go over later steps")
    step_gamma: float = Field(1.0, ge=0.0, le=1.0)
    step_advantage_coef: float = Field(1.0, ge=0.0, description="dense: weight of step advantages on step tokens")
    ppo_epochs: int = Field(1, gt=0, description="mu: passes over each step's episodes")
    loss_type: Literal["token_mean", "seq_mean", "dr_grpo"] = "token_mean"
    ratio_level: Literal["token", "sequence"] = Field("token", description="sequence: GSPO's sequence ratio")
    clip_low: float = Field(0.2, gt=0.0, lt=1.0)
    clip_high: float = Field(0.28, gt=0.0)
    dual_clip: float | None = Field(None, gt=1.0, description="dual-clip constant c (> 1) for negative advantages")
    kl_coef: float = Field(0.0, ge=0.0)
    kl_estimator: Literal["k1", "k3"] = "k3"
    importance_sampling: Literal["none", "truncated", "masked"] = Field(
        "truncated", description="correction between the engine's and the trainer's logprobs")
    importance_sampling_level: Literal["token", "sequence"] = "token"
    importance_sampling_cap: float = Field(2.0, gt=1.0)
    filter_all_equal_groups: bool = Field(True, description="drop groups whose rewards are all equal (DAPO)")
    max_refill_rounds: int = Field(2, ge=0, description="extra rollout rounds to refill filtered groups")
    mask_truncated: bool = Field(False, description="drop episodes that hit a limit from the loss (Mini-o3)")
    max_failed_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="stop when more episodes than this failed (engine, sandbox, judge) in a step")
    logprob_chunk_size: int = Field(1024, gt=0, description="positions per chunk of the trainer's logprob pass")

    @model_validator(mode="after")
    def _consistent(self) -> GRPOConfig:
        if self.clip_high < self.clip_low:
            raise ValueError(
                f"algo.clip_high ({self.clip_high}) is below algo.clip_low ({self.clip_low}); clip-higher needs "
                "clip_high >= clip_low (use equal values for symmetric clipping)"
            )
        if self.loss_type == "dr_grpo" and self.scale_rewards != "none":
            raise ValueError(
                "algo.loss_type=dr_grpo removes the std normalisation of advantages; set algo.scale_rewards=none "
                "or choose loss_type token_mean / seq_mean"
            )
        return self


class RLDataConfig(StrictModel):
    """Task JSONL files (data.Task rows), read with file:line validation."""

    train_files: list[str] = Field(..., min_length=1)
    eval_files: list[str] = Field(default_factory=list)


class RLTrainConfig(StrictModel):
    """Step geometry and what is kept."""

    steps: int = Field(200, gt=0)
    prompts_per_step: int = Field(64, gt=0, description="tasks per step, over all processes")
    updates_per_step: int = Field(1, gt=0, description="optimizer steps (mini-batches) per pass over a step")
    max_tokens_per_microbatch: int = Field(16384, gt=0, description="padded tokens after image expansion")
    save_rollouts_every: int = Field(1, ge=0, description="write rollouts/step_XXXXXX.jsonl every N steps (0: never)")
    resume: Literal["auto", "never"] | str = Field("auto", description="auto: newest complete checkpoint")
    merge_lora: bool = True
    progress_bar: bool = True


class MonitorConfig(StrictModel):
    """Tool-use collapse alarm: the tool-call rate is compared with its mean over the first `baseline_steps`."""

    baseline_steps: int = Field(5, gt=0)
    collapse_fraction: float = Field(0.25, ge=0.0, le=1.0, description="alarm below this share of the baseline")
    stop_on_collapse: bool = False


class RLConfig(StrictModel):
    """`codevl rl --config configs/rl/X.yaml [key.path=value ...] [--dry-run]`."""

    run: RunConfig = Field(default_factory=RunConfig)
    model: ModelConfig
    data: RLDataConfig
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-6, scheduler="constant"))
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    algo: GRPOConfig = Field(default_factory=GRPOConfig)
    train: RLTrainConfig = Field(default_factory=RLTrainConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    rewards: str = Field(..., description="reward set YAML, e.g. configs/rewards/codevision.yaml")

    @field_validator("rewards")
    @classmethod
    def _rewards_exists(cls, value: str) -> str:
        path = Path(value)
        if not (path.is_file() or (PROJECT_ROOT / path).is_file()):
            raise ValueError(f"reward set file not found: {value} (looked in the working directory and {PROJECT_ROOT})")
        return value

    @model_validator(mode="after")
    def _batch_geometry(self) -> RLConfig:
        episodes = self.train.prompts_per_step * self.rollout.num_generations
        if episodes < self.train.updates_per_step:
            raise ValueError(
                f"train.prompts_per_step * rollout.num_generations = {episodes} episodes per step cannot fill "
                f"train.updates_per_step ({self.train.updates_per_step}) mini-batches; lower updates_per_step"
            )
        # Engines whose logprobs are taken after top-p/top-k truncation (vLLM) cannot be compared with the trainer's
        # full-vocabulary logprobs: one rule, stated by the engines (rollout.engines.base, "Logprobs").
        from rollout.engines.base import SamplingParams, trainer_logprob_mismatch
        from rollout.engines.registry import engine_spec

        r = self.rollout
        why = trainer_logprob_mismatch(engine_spec(r.engine), SamplingParams(temperature=r.temperature, top_p=r.top_p,
                                                                              top_k=r.top_k))
        if why:
            raise ValueError(f"rollout.engine={r.engine}: {why}")
        return self
