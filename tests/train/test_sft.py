"""The SFT stage on the tiny models: labels, batching, a short run, LoRA merge, exact resume, bad input."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from rollout.render import ChatRenderer
from rollout.trajectory import Trajectory, load_trajectories, save_trajectories
from train.config import load_config
from train.config.sft import SFTConfig
from train.sft_labels import sft_tokens

ROOT = Path(__file__).resolve().parents[2]


def _message_level(traj: Trajectory) -> Trajectory:
    """The same conversation stored without token arrays (what the oracle and teachers write)."""
    t = Trajectory(id=traj.id, task=traj.task, protocol=traj.protocol, prompt_messages=traj.prompt_messages,
                   turns=[type(x)(**{**x.__dict__, "start": 0, "end": 0}) for x in traj.turns], steps=traj.steps,
                   images=traj.images, finish_reason=traj.finish_reason, answer=traj.answer)
    t.check()
    return t


def _token_exact(oracle: list[Trajectory], processor: Any) -> list[Trajectory]:
    """Replay each oracle trajectory's assistant turns as tokens through the real loop and sandbox."""
    import sandbox
    from rollout import EpisodeLimits, get_protocol, run_episodes
    from rollout.scripted import ScriptedTokenEngine

    pool = sandbox.SandboxPool(sandbox.SandboxConfig())
    out = []
    try:
        for traj in oracle:
            engine = ScriptedTokenEngine(processor, [t.text for t in traj.assistant_turns()])
            out += asyncio.run(run_episodes([traj.task], engine, protocol=get_protocol(traj.protocol), pool=pool,
                                            limits=EpisodeLimits(max_total_tokens=32768)))
    finally:
        pool.close()
    return out


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_labels_are_the_assistant_tokens_for_both_data_kinds(arch: str, tiny_models: dict[str, Path],
                                                             oracle_sft: tuple[Path, list[Any]]) -> None:
    from train.model.processor import load_processor
    from train.sft_dataset import SFTDataset, SampleRef, expanded_length

    processor = load_processor(tiny_models[arch])
    renderer = ChatRenderer(processor)
    oracle = load_trajectories(oracle_sft[0])
    multi = [t for t in oracle if len(t.assistant_turns()) >= 2 and len(t.images) >= 2]
    assert multi, "the fixture must hold multi-turn, multi-image trajectories"
    tokenized = _token_exact(multi, processor)
    eot = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for msg, tok in zip(multi, tokenized, strict=True):
        assert tok.tokenized and [t.text for t in tok.assistant_turns()] == [t.text for t in msg.assistant_turns()]
        ids_m, mask_m = sft_tokens(_message_level(tok), renderer)
        ids_t, mask_t = sft_tokens(tok, renderer)
        assert ids_m == ids_t and mask_m == mask_t  # one rule, whichever way the conversation is stored
        # the labelled runs are exactly each assistant message's tokens followed by its end-of-turn token
        runs, cur = [], []
        for i, m in zip(ids_t, mask_t, strict=True):
            if m:
                cur.append(i)
            elif cur:
                runs.append(cur)
                cur = []
        expected = [renderer.encode(t.text) + [eot] for t in tok.assistant_turns()]
        assert runs == expected
        # after image expansion: the featurised labels keep exactly those tokens, image tokens carry none
        n = len(ids_t)
        ref = SampleRef("x", 1, 0, expanded_length(tok, n, processor), tok.task.id)
        ds = SFTDataset([ref], processor, renderer)
        ds.trajectory = lambda _ref, _t=tok: _t  # type: ignore[method-assign]  # featurise this in-memory one
        feat = ds[0]
        assert feat["input_ids"].shape[0] == ref.length  # the length indexing computed equals the real expansion
        labelled = feat["labels"][feat["labels"] != -100].tolist()
        assert labelled == [i for run in expected for i in run]
        assert not (feat["labels"][feat["mm_token_type_ids"] == 1] != -100).any()


def test_token_budget_batches_by_hand() -> None:
    from train.batching import TokenBudgetBatchSampler, fixed_size_batches, token_budget_batches

    lengths = [100, 900, 120, 880, 300, 50]
    # sorted longest first: 900(1), 880(3), 300(4), 120(2), 100(0), 50(5); budget 1000 padded tokens:
    # [1] alone (900*2 > 1000); [3] alone; [4, 2, 0]: 300*3 = 900 <= 1000, adding 5 gives 300*4 = 1200 > 1000; [5]
    assert token_budget_batches(lengths, 1000) == [[1], [3], [4, 2, 0], [5]]
    assert token_budget_batches(lengths, 1000, max_batch_size=2) == [[1], [3], [4, 2], [0, 5]]
    assert token_budget_batches([5000], 1000) == [[0]]  # too long for the budget: a batch of its own
    sampler = TokenBudgetBatchSampler(token_budget_batches(lengths, 1000), seed=3)
    e0 = list(sampler)
    sampler.set_epoch(1)
    e1 = list(sampler)
    assert sorted(map(tuple, e0)) == sorted(map(tuple, e1)) and len(e0) == 4  # same batches, new order
    sampler.set_epoch(0)
    assert list(sampler) == e0
    assert sorted(i for b in fixed_size_batches(5, 2, seed=1) for i in b) == [0, 1, 2, 3, 4]


def test_collator_pads_and_concatenates_images() -> None:
    from train.batching import pad_collate

    a = {"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor([-100, 6, 7]),
         "mm_token_type_ids": torch.tensor([0, 1, 0]), "pixel_values": torch.ones(4, 3),
         "image_grid_thw": torch.tensor([[1, 2, 2]])}
    b = {"input_ids": torch.tensor([8]), "labels": torch.tensor([8]), "mm_token_type_ids": torch.tensor([0])}
    out = pad_collate([a, b], pad_token_id=0)
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert out["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["pixel_values"].shape == (4, 3) and out["image_grid_thw"].tolist() == [[1, 2, 2]]


def _cfg(tiny: Path, data: Path, out: Path, *extra: str) -> SFTConfig:
    return load_config(SFTConfig, ROOT / "configs/sft/tiny_cpu.yaml",
                       [f"model.name_or_path={tiny}", f"data.train_files=[{data}]", f"run.output_dir={out}",
                        "train.progress_bar=false", *extra])


def test_short_run_lowers_the_loss_and_saves_a_loadable_model(tiny_models: dict[str, Path],
                                                              oracle_sft: tuple[Path, list[Any]],
                                                              tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    from train.run_files import read_metrics
    from train.sft import run_sft

    res = run_sft(_cfg(tiny_models["qwen2_5_vl"], oracle_sft[0], tmp_path / "run", "train.max_steps=12"),
                  say=lambda s: None)
    assert res.steps == 12 and len(res.losses) >= 6
    assert res.losses[-1] < 0.9 * res.losses[0]
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows if "loss" in r][:3] == [1, 2, 3] and all("lr" in r for r in rows if "loss" in r)
    model = AutoModelForImageTextToText.from_pretrained(res.final_dir)  # plain HF format
    assert model.config.model_type == "qwen2_5_vl"
    assert (res.final_dir / "tokenizer.json").is_file() and (res.final_dir / "processor_config.json").is_file()
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["train_samples"] == len(load_trajectories(oracle_sft[0]))


def test_interrupted_run_resumes_exactly(tiny_models: dict[str, Path], oracle_sft: tuple[Path, list[Any]],
                                         tmp_path: Path) -> None:
    from transformers import TrainerCallback

    from train.run_files import read_metrics
    from train.sft import run_sft

    class StopAt(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 4:
                control.should_training_stop = True

    # 2 epochs of several token-budget batches, a checkpoint every 2 steps, LoRA (its dropout draws random numbers)
    extra = ("train.epochs=2", "run.save_steps=2", "train.max_tokens_per_batch=4096", "model.finetune=lora")
    whole = run_sft(_cfg(tiny_models["qwen2_5_vl"], oracle_sft[0], tmp_path / "a", *extra), say=lambda s: None)
    run_sft(_cfg(tiny_models["qwen2_5_vl"], oracle_sft[0], tmp_path / "b", *extra), callbacks=[StopAt()],
            say=lambda s: None)
    assert (tmp_path / "b" / "checkpoint-4").is_dir()
    resumed = run_sft(_cfg(tiny_models["qwen2_5_vl"], oracle_sft[0], tmp_path / "b", *extra), say=lambda s: None)
    assert resumed.steps == whole.steps > 6
    a = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "a") if "loss" in r}
    b = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "b") if "loss" in r}
    assert a == b  # every step's loss, across the interruption, as in the uninterrupted run


def test_lora_merge_gives_the_adapter_logits(tiny_models: dict[str, Path], oracle_sft: tuple[Path, list[Any]],
                                            tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from train.model.processor import load_processor
    from train.sft import run_sft
    from train.sft_dataset import SFTDataset, SampleRef

    res = run_sft(_cfg(tiny_models["qwen3_vl"], oracle_sft[0], tmp_path / "run", "train.max_steps=4",
                       "model.finetune=lora", "train.merge_lora=true", "optim.lr=0.05"), say=lambda s: None)
    assert res.final_dir == tmp_path / "run" / "final"
    processor = load_processor(tiny_models["qwen3_vl"])
    traj = load_trajectories(oracle_sft[0])[0]
    ds = SFTDataset([SampleRef(str(oracle_sft[0]), 1, 0, 0, traj.task.id)], processor, ChatRenderer(processor))
    feat = ds[0]
    inputs = {"input_ids": feat["input_ids"][None], "attention_mask": torch.ones_like(feat["input_ids"])[None],
              "mm_token_type_ids": feat["mm_token_type_ids"][None], "pixel_values": feat["pixel_values"],
              "image_grid_thw": feat["image_grid_thw"]}
    base = AutoModelForImageTextToText.from_pretrained(tiny_models["qwen3_vl"], dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, str(tmp_path / "run" / "adapter")).eval()
    merged = AutoModelForImageTextToText.from_pretrained(res.final_dir, dtype=torch.float32).eval()
    plain = AutoModelForImageTextToText.from_pretrained(tiny_models["qwen3_vl"], dtype=torch.float32).eval()
    with torch.no_grad():
        la, lm, lp = adapted(**inputs).logits, merged(**inputs).logits, plain(**inputs).logits
    assert torch.allclose(la, lm, atol=1e-4)
    assert (la - lp).abs().max() > 1e-3  # the adapter changed something


def _run_cli(*argv: str) -> tuple[int, str]:
    import contextlib
    import io

    from train.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["sft", *argv])
    return code, err.getvalue()


def test_bad_input_is_named_before_weights_load(tiny_models: dict[str, Path], oracle_sft: tuple[Path, list[Any]],
                                                tmp_path: Path) -> None:
    tiny = tiny_models["qwen2_5_vl"]
    cfg = str(ROOT / "configs/sft/tiny_cpu.yaml")
    base = [f"model.name_or_path={tiny}", f"run.output_dir={tmp_path / 'run'}"]
    code, err = _run_cli("--config", cfg, *base, f"data.train_files=[{tmp_path / 'missing.jsonl'}]")
    assert code == 1 and "missing.jsonl: no such file" in err
    rows = oracle_sft[0].read_text().splitlines()
    shutil.copytree(oracle_sft[0].parent / "images", tmp_path / "images")  # row 1's images, where it refers
    bad = tmp_path / "bad.jsonl"
    bad.write_text(rows[0] + "\n" + "{not json\n")
    code, err = _run_cli("--config", cfg, *base, f"data.train_files=[{bad}]")
    assert code == 1 and f"{bad}:2" in err
    # an image that does not decode: truncate a copy of the data's images
    trajs = load_trajectories(oracle_sft[0])[:1]
    broken = tmp_path / "broken" / "sft.jsonl"
    save_trajectories(broken, trajs)
    png = sorted((broken.parent / "images").glob("*.png"))[0]
    png.write_bytes(png.read_bytes()[:60])
    code, err = _run_cli("--config", cfg, *base, f"data.train_files=[{broken}]")
    assert code == 1 and f"{broken}:1" in err and "does not decode" in err
    code, err = _run_cli("--config", cfg, *base, f"data.train_files=[{oracle_sft[0]}]", "model.finetune=full",
                         "model.lora.r=8")
    assert code == 2 and "model.finetune=full" in err and "lora" in err
    code, err = _run_cli("--config", cfg, f"model.name_or_path={tmp_path}", f"data.train_files=[{oracle_sft[0]}]")
    assert code == 1 and "not a model directory" in err
    code, err = _run_cli("--config", cfg, "model.name_or_path=./no/such/model", f"data.train_files=[{oracle_sft[0]}]")
    assert code == 1 and "no such directory" in err
    assert not (tmp_path / "run" / "config.yaml").exists()  # nothing started


def test_overlong_samples_are_dropped_or_named(tiny_models: dict[str, Path], oracle_sft: tuple[Path, list[Any]],
                                               tmp_path: Path) -> None:
    from train.model.processor import load_processor
    from train.sft import build_datasets
    from train.sft_dataset import SFTDataError

    processor = load_processor(tiny_models["qwen2_5_vl"])
    cfg = _cfg(tiny_models["qwen2_5_vl"], oracle_sft[0], tmp_path / "run", "data.max_length=900",
               "train.max_tokens_per_batch=4096")
    train, _, info = build_datasets(cfg, processor)
    lengths = [r["length"] for r in info["dropped_overlong"]]
    assert lengths and min(lengths) > 900 and len(train) + len(lengths) == len(load_trajectories(oracle_sft[0]))
    with pytest.raises(SFTDataError, match=r"oracle.jsonl:\d+: \d+ tokens after image expansion > data.max_length"):
        build_datasets(cfg.model_copy(update={"data": cfg.data.model_copy(update={"overlong": "error"})}), processor)
