"""Run section: where outputs go, seeding, logging and checkpoint cadence (shared by every stage)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from train.config.base import StrictModel


class RunConfig(StrictModel):
    """Bookkeeping of a run. The resolved config is written to `output_dir/config.yaml` at start."""

    output_dir: str = Field("runs/default", min_length=1)
    seed: int = 42
    logging_steps: int = Field(10, gt=0)
    save_steps: int = Field(500, gt=0)
    save_total_limit: int | None = Field(3, gt=0)
    report_to: list[Literal["none", "tensorboard", "wandb"]] = Field(default_factory=lambda: ["none"])  # type: ignore[arg-type]


class OptimConfig(StrictModel):
    """AdamW with warmup and a decay schedule."""

    lr: float = Field(1e-5, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    adam_beta1: float = Field(0.9, ge=0.0, lt=1.0)
    adam_beta2: float = Field(0.999, ge=0.0, lt=1.0)
    adam_epsilon: float = Field(1e-8, gt=0.0)
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    scheduler: Literal["constant", "constant_with_warmup", "cosine", "linear"] = "cosine"
    max_grad_norm: float = Field(1.0, gt=0.0)
