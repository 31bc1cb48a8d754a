"""The SFT stage's config (stage 1: fine-tune on curated code-as-tool trajectories).

    codevl sft --config configs/sft/tiny_cpu.yaml train.max_steps=20 --dry-run

Every key is checked at load time; combinations that cannot work (an eval cadence without eval data, LoRA asked
for together with full fine-tuning, a token budget smaller than the longest allowed sample) fail with a message
that names the key and says what to change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from train.config.base import StrictModel
from train.config.model import ModelConfig
from train.config.run import OptimConfig, RunConfig


class DataFile(StrictModel):
    """One trajectory JSONL file and its mixing weight.

    `weight` scales how many of the file's trajectories one epoch contains: 1.0 takes each once, 2.0 twice,
    0.5 a seeded half. A bare string in `train_files` means weight 1.0."""

    path: str = Field(..., min_length=1)
    weight: float = Field(1.0, gt=0.0)


class SFTDataConfig(StrictModel):
    """Trajectory JSONL files (what `codevl data curate` and the oracle write, or saved RL rollouts).

    Message-level trajectories (teacher / oracle data) are rendered through the model's chat template exactly as
    the episode loop renders a conversation; token-exact ones (rollouts) are used as they are. Either way the
    loss covers the assistant's tokens and the end-of-turn token closing each assistant turn."""

    train_files: list[DataFile] = Field(..., min_length=1)
    eval_files: list[DataFile] = Field(default_factory=list)
    eval_fraction: float = Field(0.0, ge=0.0, lt=0.5, description="hold out this share of the train data as eval")
    protocol: str | None = Field(None, description="if set, refuse trajectories written in another protocol")
    max_length: int = Field(16384, gt=0, description="tokens per example, after image expansion")
    overlong: Literal["drop", "error"] = Field(
        "drop", description="a sample longer than max_length: drop and count it, or stop naming it")

    @field_validator("train_files", "eval_files", mode="before")
    @classmethod
    def _bare_paths(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"path": v} if isinstance(v, str) else v for v in value]
        return value


class SFTTrainConfig(StrictModel):
    """Schedule and batch geometry.

    Batches: with `max_tokens_per_batch` set, each device batch holds as many trajectories as fit that many
    padded tokens after image expansion (long and short samples do not share a batch, so little is padding);
    otherwise `per_device_batch_size` trajectories. global batch = device batch * grad_accum * world size."""

    epochs: float = Field(2.0, gt=0.0)
    max_steps: int | None = Field(None, gt=0, description="optimizer steps; overrides epochs when set")
    per_device_batch_size: int = Field(1, gt=0)
    max_tokens_per_batch: int | None = Field(None, gt=0, description="token budget per device batch (padded)")
    gradient_accumulation_steps: int = Field(1, gt=0)
    eval_steps: int | None = Field(None, gt=0)
    mixed_precision: Literal["no", "bf16", "fp16"] = Field("bf16", description="autocast; the tiny CPU configs use no")
    resume: Literal["auto", "never"] | str = Field(
        "auto", description="auto: continue from the newest checkpoint in run.output_dir; or a checkpoint path")
    merge_lora: bool = Field(True, description="save the final model with the LoRA adapter merged in")
    dataloader_num_workers: int = Field(0, ge=0)
    progress_bar: bool = True

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value: object) -> object:
        return "no" if value is False else value  # YAML reads a bare `no` as false


class SFTConfig(StrictModel):
    """`codevl sft --config configs/sft/X.yaml [key.path=value ...] [--dry-run]`."""

    run: RunConfig = Field(default_factory=RunConfig)
    model: ModelConfig
    data: SFTDataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: SFTTrainConfig = Field(default_factory=SFTTrainConfig)

    @model_validator(mode="after")
    def _consistent(self) -> SFTConfig:
        if self.train.eval_steps is not None and not (self.data.eval_files or self.data.eval_fraction > 0):
            raise ValueError("train.eval_steps is set but there is no eval data; set data.eval_files or "
                             "data.eval_fraction, or unset train.eval_steps")
        budget = self.train.max_tokens_per_batch
        if budget is not None and budget < self.data.max_length:
            raise ValueError(f"train.max_tokens_per_batch ({budget}) is smaller than data.max_length "
                             f"({self.data.max_length}): the longest allowed sample would fit no batch; raise the "
                             "budget or lower max_length")
        return self
