"""The chunked logprob pass under DeepSpeed ZeRO-3 (CPU accelerator, gloo, one process): the LM head is partitioned
(numel 0 outside a gather), the pass runs through the engine's top-level call, and logprobs and every parameter's
gradient equal those of the unwrapped model.

`slow`: DeepSpeed builds its CPU communication op with a C++ compiler on first use, and the engine's start-up takes
tens of seconds on two cores. Run it with `pytest -m slow tests/train/test_logprobs_zero3.py`. It runs in a
subprocess because DeepSpeed's ZeRO-3 settings are process-global (they change how transformers loads models)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])  # qwen3_vl: LM head tied to the embeddings
def test_zero3_logprobs_and_gradients_equal_the_plain_model(arch: str, tmp_path: Path) -> None:
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29533", "RANK": "0",
           "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, __file__, arch, str(tmp_path)], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "ZERO3 OK" in out.stdout, out.stdout[-3000:]


def _run(arch: str, tmp: Path) -> None:
    import deepspeed
    import torch
    from deepspeed.utils import safe_get_full_grad
    from transformers.integrations import HfDeepSpeedConfig

    from tests.train.test_logprobs import _inputs
    from train.config.model import ModelConfig
    from train.logprobs import token_logprobs
    from train.model.loading import load_model
    from train.model.tiny import build_tiny_model

    cfg = ModelConfig(name_or_path=str(build_tiny_model(arch, tmp / "model", seed=0)), dtype="float32",
                      attn_implementation="eager", freeze_vision_tower=False, freeze_projector=False)
    model, proc = load_model(cfg)
    model.eval()
    inputs = _inputs(proc)
    mask = inputs["loss_mask"]

    def objective(out: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return (out[0] * mask).sum() + 0.5 * (out[1] * mask).sum()

    ref = token_logprobs(model, inputs, loss_mask=mask, chunk_size=9, with_entropy=True)
    objective(ref).backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    deepspeed.init_distributed(dist_backend="gloo")
    ds_config = {"train_micro_batch_size_per_gpu": 1, "zero_allow_untested_optimizer": True,
                 "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}}
    keep = HfDeepSpeedConfig(ds_config)  # noqa: F841  (transformers loads under zero.Init while it is alive)
    sharded, _ = load_model(cfg)
    sharded.eval()
    engine, *_ = deepspeed.initialize(model=sharded, optimizer=torch.optim.SGD(sharded.parameters(), lr=0.0),
                                      config=ds_config)
    head = engine.module.get_output_embeddings().weight
    assert hasattr(head, "ds_id") and head.numel() == 0, "the LM head should be partitioned"
    out = token_logprobs(engine, inputs, loss_mask=mask, chunk_size=9, with_entropy=True)
    torch.testing.assert_close(out[0], ref[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], ref[1], atol=1e-6, rtol=0)
    engine.backward(objective(out))
    checked = 0
    for name, param in engine.module.named_parameters():
        if name not in ref_grads:
            continue
        grad = safe_get_full_grad(param)
        assert grad is not None, f"{name}: no gradient under ZeRO-3"
        torch.testing.assert_close(grad.reshape(ref_grads[name].shape), ref_grads[name], atol=1e-6, rtol=1e-4)
        checked += 1
    assert checked == len(ref_grads)
    print(f"ZERO3 OK: {checked} gradients")


if __name__ == "__main__":
    _run(sys.argv[1], Path(sys.argv[2]))
