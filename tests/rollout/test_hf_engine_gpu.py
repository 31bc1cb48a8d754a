"""The HF engine and the training forward pass on a CUDA GPU: what the CPU tests check, on the device a real run uses.

    .venv/bin/python -m pytest tests/rollout/test_hf_engine_gpu.py -v -s     # -s prints the measured differences

Skipped without CUDA. On the tiny models (both architectures), taught one scripted trajectory on the GPU:
- fp32 (TF32 off), eager and SDPA attention: greedy rollouts are token-exact against the renderer and reproduce
  the memorised trajectory; sampling logprobs from batched, left-padded generation match a single-sequence
  training forward pass (tolerance 1e-4 as on CPU; the measured maximum is printed);
- bf16 (the dtype real runs sample in): the same comparison, with the measured mismatch printed and bounded
  loosely: bf16 rollout/trainer mismatch is real and is why the RL loss carries importance ratios.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")

from rollout.engines.base import SamplingParams  # noqa: E402
from rollout.engines.hf import HFEngine  # noqa: E402
from rollout.expand import trainer_inputs  # noqa: E402
from rollout.loop import EpisodeLimits, run_episodes  # noqa: E402
from rollout.protocols import get_protocol  # noqa: E402
from rollout.render import ChatRenderer  # noqa: E402
from rollout.scripted import ScriptedTokenEngine  # noqa: E402
from rollout.task import Task  # noqa: E402
from rollout.trajectory import FinishReason, Trajectory  # noqa: E402
from tests.rollout.conftest import load_tiny, make_task  # noqa: E402
from train.fit import fit_trajectories  # noqa: E402
from train.logprobs import token_logprobs  # noqa: E402

PROTOCOL = get_protocol("codevl")
SCRIPT = [
    PROTOCOL.format_assistant("Crop.", code="c = image_clue_0.crop((0, 0, 40, 40))\nshow(c)"),
    PROTOCOL.format_assistant("", answer="red"),
]
LIMITS = EpisodeLimits(max_new_tokens_per_turn=80, max_total_tokens=1500)


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def taught_gpu(request: pytest.FixtureRequest, tiny_dirs: dict[str, Path], pool: Any,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Task, Trajectory, str]:
    """The tiny model, taught the scripted trajectory on the GPU in fp32 with TF32 off."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model, proc = load_tiny(tiny_dirs[request.param])
    model.to("cuda")
    task = make_task(tmp_path_factory.mktemp("task"))
    target = asyncio.run(run_episodes([task], ScriptedTokenEngine(proc, SCRIPT), protocol=PROTOCOL, pool=pool))[0]
    losses = fit_trajectories(model, proc, [target], steps=80, lr=3e-3)
    assert next(model.parameters()).is_cuda
    assert losses[-1] < 0.1 * losses[0], losses
    return model, proc, task, target, request.param


def _variant(model: Any, dtype: Any, attn: str) -> Any:
    m = copy.deepcopy(model).to(dtype)
    m.set_attn_implementation(attn)
    return m.eval()


def _logprob_diffs(model: Any, proc: Any, trajs: list[Trajectory], temperature: float) -> tuple[float, float, int]:
    """(max, mean) |trainer logprob - engine logprob| over sampled tokens, and how many tokens."""
    diffs = []
    for tr in trajs:
        inputs = trainer_inputs(tr.token_ids, [im.array for im in tr.images], proc, loss_mask=tr.loss_mask,
                                logprobs=tr.logprobs)
        with torch.no_grad():
            lp = token_logprobs(model, inputs, temperature=temperature).cpu()
        mask = inputs["loss_mask"].bool()
        diffs.append((lp[mask] - inputs["old_logprobs"][mask]).abs())
    d = torch.cat(diffs)
    return float(d.max()), float(d.mean()), int(d.numel())


def _sample(model: Any, proc: Any, task: Task, pool: Any, temperature: float) -> list[Trajectory]:
    engine = HFEngine(model, proc, max_batch_size=4)
    trajs = asyncio.run(run_episodes([task], engine, protocol=PROTOCOL, pool=pool, samples_per_task=4, seed=3,
                                     sampling=SamplingParams(temperature=temperature), limits=LIMITS))
    assert engine.stats["batches"] < engine.stats["requests"]
    return trajs


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_fp32_rollouts_on_gpu_are_token_exact_and_logprobs_match(
        taught_gpu: tuple[Any, Any, Task, Trajectory, str], pool: Any, attn: str) -> None:
    model, proc, task, target, arch = taught_gpu
    m = _variant(model, torch.float32, attn)
    tr = asyncio.run(run_episodes([task], HFEngine(m, proc), protocol=PROTOCOL, pool=pool,
                                  sampling=SamplingParams(temperature=0), limits=LIMITS))[0]
    assert tr.finish_reason is FinishReason.ANSWERED and tr.answer == "red"
    full = ChatRenderer(proc).render_ids(tr.messages(), tr.assistant_token_ids())
    assert full.token_ids == tr.token_ids == target.token_ids
    mx, mean, n = _logprob_diffs(m, proc, _sample(m, proc, task, pool, 1.3), 1.3)
    print(f"\n[{arch} fp32 {attn}] logprob |trainer - engine| over {n} tokens: max {mx:.2e} mean {mean:.2e}")
    assert n > 100 and mx < 1e-4


def test_bf16_rollout_logprob_mismatch_is_measured_and_small(
        taught_gpu: tuple[Any, Any, Task, Trajectory, str], pool: Any) -> None:
    model, proc, task, _, arch = taught_gpu
    m = _variant(model, torch.bfloat16, "sdpa")
    trajs = _sample(m, proc, task, pool, 1.0)
    assert all(t.finish_reason is not FinishReason.ENGINE_ERROR for t in trajs)
    mx, mean, n = _logprob_diffs(m, proc, trajs, 1.0)
    print(f"\n[{arch} bf16 sdpa] logprob |trainer - engine| over {n} tokens: max {mx:.2e} mean {mean:.2e}")
    assert n > 50 and mean < 0.05 and mx < 1.0
