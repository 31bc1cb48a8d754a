"""Stage 1: supervised fine-tuning on code-as-tool trajectories, on TRL's `SFTTrainer`.

    codevl sft --config configs/sft/tiny_cpu.yaml [key.path=value ...] [--dry-run]
    accelerate launch --config_file configs/accelerate/zero3.yaml -m train.sft --config configs/sft/codevision_qwen2_5_vl_7b.yaml
    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m train.sft --config configs/sft/tiny_cpu.yaml

What this module adds to TRL's trainer, and why:
- the data (`train.sft_dataset`): trajectory JSONL files (message-level or token-exact) validated row by row,
  rendered through the model's chat template exactly as the episode loop renders a conversation, labels emitted
  by the project's own rule (`train.sft_labels`: assistant tokens plus each turn's end-of-turn token; TRL's
  `assistant_only_loss` needs `{% generation %}` tags that neither Qwen-VL template has). So TRL's dataset
  preparation is skipped (`skip_prepare_dataset`, `remove_unused_columns=False`);
- the batches (`train.batching`): padded multi-image batches (concatenated `pixel_values` / `image_grid_thw`),
  formed by a token budget after image expansion when `train.max_tokens_per_batch` is set;
- the run directory: resolved `config.yaml`, `metrics.jsonl`, `data_report.json`, checkpoints that resume exactly
  (model, optimizer, scheduler, RNG states and data position are TRL/transformers' own), and the final model in
  Hugging Face format with its processor (`final/`), LoRA merged when `train.merge_lora`.
The loss itself (chunked log-probs at label positions, token mean over the whole accumulated batch) is TRL's.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.config import ConfigError, resolved_yaml, save_resolved
from train.config.loader import project_path
from train.config.sft import DataFile, SFTConfig
from train.run_files import MetricsLog, RunDirError, check_same_config, latest_checkpoint

logger = logging.getLogger(__name__)

FINAL_DIR = "final"
COMPLETE_MARKER = "trainer_state.json"  # transformers writes it last in a checkpoint folder
# Keys of the config a resume may change without it being another run.
RESUME_MAY_CHANGE = ("train.resume", "train.progress_bar", "train.dataloader_num_workers", "run.report_to")


@dataclass
class SFTResult:
    output_dir: Path
    final_dir: Path
    losses: list[float] = field(default_factory=list)  # training loss per logged step
    steps: int = 0
    data_report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def build_datasets(cfg: SFTConfig, processor: Any) -> tuple[Any, Any | None, dict[str, Any]]:
    """(train dataset, eval dataset or None, data report) for `cfg`; raises SFTDataError naming file:line."""
    import random

    from rollout.render import ChatRenderer
    from train.sft_dataset import IndexReport, SFTDataset, index_file, split_by_task, weighted

    renderer = ChatRenderer(processor)
    report = IndexReport()
    d = cfg.data

    def index(files: Sequence[DataFile]) -> list[tuple[DataFile, list[Any]]]:
        return [(f, index_file(str(project_path(f.path)), processor, renderer, max_length=d.max_length, overlong=d.overlong,
                               protocol=d.protocol, report=report)) for f in files]

    rng = random.Random(cfg.run.seed)
    train_refs: list[Any] = []
    eval_refs: list[Any] = []
    for f, refs in index(d.train_files):
        keep, held = split_by_task(refs, d.eval_fraction, cfg.run.seed)
        train_refs += weighted(keep, f.weight, rng)
        eval_refs += held
    for f, refs in index(d.eval_files):
        eval_refs += weighted(refs, f.weight, rng)
    if not train_refs:
        raise ConfigError(f"no training data left: {report.summary()}; raise data.max_length or check the files")
    info = {**report.to_dict(), "train_samples": len(train_refs), "eval_samples": len(eval_refs),
            "summary": report.summary()}
    eval_ds = SFTDataset(eval_refs, processor, renderer).as_hf_dataset() if eval_refs else None
    return SFTDataset(train_refs, processor, renderer).as_hf_dataset(), eval_ds, info


def _batches(dataset: Any, cfg: SFTConfig, seed: int) -> list[list[int]]:
    from train.batching import fixed_size_batches, token_budget_batches
    from train.sft_dataset import dataset_lengths

    if cfg.train.max_tokens_per_batch:
        return token_budget_batches(dataset_lengths(dataset), cfg.train.max_tokens_per_batch, seed=seed)
    return fixed_size_batches(len(dataset), cfg.train.per_device_batch_size, seed=seed)


def _trainer_class() -> type:
    """TRL's SFTTrainer with the project's batch samplers (built lazily: importing TRL imports torch)."""
    from torch.utils.data import DataLoader
    from trl import SFTTrainer

    from train.batching import TokenBudgetBatchSampler

    class CodevlSFTTrainer(SFTTrainer):
        """SFTTrainer whose data loaders yield the project's batches (`train.batching`)."""

        def __init__(self, *args: Any, codevl_cfg: SFTConfig, **kwargs: Any) -> None:
            self.codevl_cfg = codevl_cfg
            super().__init__(*args, **kwargs)

        def _loader(self, dataset: Any, shuffle: bool) -> Any:
            sampler = TokenBudgetBatchSampler(_batches(dataset, self.codevl_cfg, self.args.seed), seed=self.args.seed,
                                              shuffle=shuffle)
            loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                                num_workers=self.args.dataloader_num_workers)
            prepared = self.accelerator.prepare(loader)
            if shuffle:
                self.codevl_sampler = sampler
            return prepared

        def get_train_dataloader(self) -> Any:
            return self._loader(self.train_dataset, shuffle=True)

        def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
            return self._loader(eval_dataset if eval_dataset is not None else self.eval_dataset, shuffle=False)

    return CodevlSFTTrainer


def _callbacks(cfg: SFTConfig, run_dir: Path, losses: list[float]) -> list[Any]:
    from transformers import TrainerCallback

    class RunLog(TrainerCallback):
        """metrics.jsonl rows with the project's key names, tokens/s, and the epoch given to the batch sampler."""

        def __init__(self) -> None:
            self.log = MetricsLog(run_dir)
            self.t_last = time.perf_counter()
            self.tokens_last = 0.0

        trainer: Any = None  # set once the trainer exists; its train loader's batch sampler gets the epoch

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            # transformers forwards set_epoch to a batch sampler only on a fresh loader, not through the
            # skip-first-batches wrapper of a resumed epoch: the epoch comes from the state (floor of 1.5 is 1).
            sampler = getattr(self.trainer, "codevl_sampler", None)
            if sampler is not None:
                sampler.set_epoch(math.floor(state.epoch + 1e-9))

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if not logs or not state.is_world_process_zero:
                return
            row: dict[str, Any] = {}
            for k, v in logs.items():
                key = {"learning_rate": "lr"}.get(k, k)
                if key.startswith("eval_"):
                    key = "eval/" + key[len("eval_"):]
                row[key] = v
            now = time.perf_counter()
            if "num_tokens" in logs:
                row["tokens_per_s"] = (float(logs["num_tokens"]) - self.tokens_last) / max(now - self.t_last, 1e-9)
                self.tokens_last, self.t_last = float(logs["num_tokens"]), now
            if "loss" in logs:
                losses.append(float(logs["loss"]))
            self.log.write(state.global_step, row)

    return [RunLog()]


def training_arguments(cfg: SFTConfig) -> Any:
    """TRL `SFTConfig` from the project's config (every value set explicitly: TRL's defaults differ from
    transformers', e.g. gradient checkpointing and bf16 default on)."""
    from trl import SFTConfig as TRLSFTConfig

    from train.distributed import cpu_only

    t, o, r = cfg.train, cfg.optim, cfg.run
    has_eval = bool(cfg.data.eval_files or cfg.data.eval_fraction > 0)
    return TRLSFTConfig(
        output_dir=r.output_dir, seed=r.seed, data_seed=r.seed,
        num_train_epochs=t.epochs, max_steps=t.max_steps or -1,
        per_device_train_batch_size=t.per_device_batch_size, per_device_eval_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=o.lr, weight_decay=o.weight_decay, adam_beta1=o.adam_beta1, adam_beta2=o.adam_beta2,
        adam_epsilon=o.adam_epsilon, lr_scheduler_type=o.scheduler, warmup_steps=o.warmup_ratio,
        max_grad_norm=o.max_grad_norm,  # the one place gradient clipping is set (DeepSpeed configs say "auto")
        bf16=t.mixed_precision == "bf16", fp16=t.mixed_precision == "fp16",
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.model.gradient_checkpointing else None,
        logging_steps=r.logging_steps, logging_first_step=True,
        save_strategy="steps", save_steps=r.save_steps, save_total_limit=r.save_total_limit,
        eval_strategy="steps" if (has_eval and t.eval_steps) else "no", eval_steps=t.eval_steps,
        report_to=[x for x in r.report_to if x != "none"] or "none",
        disable_tqdm=not t.progress_bar, dataloader_num_workers=t.dataloader_num_workers,
        remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True},
        max_length=None, packing=False, padding_free=False,
        use_cpu=cpu_only(),  # train.distributed: without a GPU, launched processes join a gloo group
    )


def _resume_from(cfg: SFTConfig, run_dir: Path) -> str | None:
    if cfg.train.resume == "never":
        return None
    if cfg.train.resume == "auto":
        ckpt = latest_checkpoint(run_dir, COMPLETE_MARKER)
        return str(ckpt) if ckpt else None
    path = Path(cfg.train.resume)
    if not (path / COMPLETE_MARKER).is_file():
        raise RunDirError(f"train.resume={cfg.train.resume}: not a complete checkpoint folder (no {COMPLETE_MARKER}); "
                          f"use auto, never, or a checkpoint-<step> folder of a finished save")
    return str(path)


def _quiet(_line: str) -> None:
    return None


def run_sft(cfg: SFTConfig, *, callbacks: Sequence[Any] = (), say: Callable[[str], None] = print) -> SFTResult:
    """Run the SFT stage described by `cfg`; returns where the final model is and the logged losses."""
    import yaml

    from train.batching import TrajectoryCollator
    from train.export import merge_adapter
    from train.model.loading import load_model
    from train.model.processor import load_processor

    import os

    t0 = time.perf_counter()
    if int(os.environ.get("RANK", "0")) != 0:  # under a launcher, only the main process talks
        say = _quiet
    run_dir = Path(cfg.run.output_dir)
    check_same_config(run_dir, yaml.safe_load(resolved_yaml(cfg)), ignore=RESUME_MAY_CHANGE)
    resume = _resume_from(cfg, run_dir)
    # Data first: a bad row fails in seconds, before any weights load.
    processor = load_processor(cfg.model.name_or_path, min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    train_ds, eval_ds, info = build_datasets(cfg, processor)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    say(f"[sft] data: {info['summary']}; {info['train_samples']} train / {info['eval_samples']} eval samples per epoch"
        f"; {world} process(es)")
    from transformers import set_seed

    set_seed(cfg.run.seed)  # before the model: a LoRA adapter's initial weights are random
    model, processor = load_model(cfg.model)
    args = training_arguments(cfg)
    if args.should_save:
        save_resolved(cfg, run_dir)
        (run_dir / "data_report.json").write_text(json.dumps(info, indent=2) + "\n")
    losses: list[float] = []
    run_log = _callbacks(cfg, run_dir, losses)
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=processor,
        data_collator=TrajectoryCollator(processor.tokenizer.pad_token_id), callbacks=[*run_log, *callbacks],
        codevl_cfg=cfg,
    )
    run_log[0].trainer = trainer
    if resume:
        say(f"[sft] resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume)
    final = run_dir / FINAL_DIR
    if cfg.model.lora is not None:
        trainer.save_model(str(run_dir / "adapter"))
        if trainer.args.should_save:
            processor.save_pretrained(run_dir / "adapter")
            if cfg.train.merge_lora:
                merge_adapter(cfg.model, run_dir / "adapter", final, processor)
        if not cfg.train.merge_lora:
            final = run_dir / "adapter"
    else:
        trainer.save_model(str(final))
        if trainer.args.should_save:
            processor.save_pretrained(final)
    trainer.accelerator.wait_for_everyone()
    result = SFTResult(run_dir, final, losses, trainer.state.global_step, info, time.perf_counter() - t0)
    say(f"[sft] {result.steps} steps in {result.seconds:.0f} s; final model in {final}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m train.sft --config X [overrides] [--dry-run]` (what `accelerate launch -m train.sft` runs): the
    same command as `codevl sft`, through the command line's one error and Ctrl-C policy (`train.cli`)."""
    from train.cli import main as cli_main

    return cli_main(["sft", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
