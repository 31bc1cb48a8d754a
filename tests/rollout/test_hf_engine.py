"""The HF engine on the real tiny models: token-exact multi-turn rollouts, logprobs that a training forward pass
reproduces, batching, stop strings, and placeholder tokens that can never be sampled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rollout.engines.base import SamplingParams
from rollout.engines.hf import HFEngine
from rollout.expand import expand_sequence, trainer_inputs
from rollout.loop import EpisodeLimits, run_episodes
from rollout.protocols import get_protocol
from rollout.render import ChatRenderer
from rollout.scripted import ScriptedTokenEngine
from rollout.task import Task
from rollout.trajectory import FinishReason
from tests.rollout.conftest import load_tiny, make_task
from train.fit import fit_trajectories
from train.logprobs import token_logprobs

PROTOCOL = get_protocol("codevl")
SCRIPT = [
    PROTOCOL.format_assistant("Crop.", code="c = image_clue_0.crop((0, 0, 40, 40))\nshow(c)"),
    PROTOCOL.format_assistant("", answer="red"),
]


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def taught(request: pytest.FixtureRequest, tiny_dirs: dict[str, Path], pool: Any,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Task, Any]:
    """A tiny model that has memorised one scripted two-step trajectory (so that it writes code), its processor,
    the task, and the scripted trajectory it learned."""
    model, proc = load_tiny(tiny_dirs[request.param])
    task = make_task(tmp_path_factory.mktemp("task"))
    target = asyncio.run(run_episodes([task], ScriptedTokenEngine(proc, SCRIPT), protocol=PROTOCOL, pool=pool))[0]
    losses = fit_trajectories(model, proc, [target], steps=80, lr=3e-3)
    assert losses[-1] < 0.1 * losses[0]
    return model, proc, task, target


def test_greedy_rollout_is_token_exact_against_the_renderer(taught: tuple[Any, Any, Task, Any], pool: Any) -> None:
    model, proc, task, target = taught
    engine = HFEngine(model, proc)
    tr = asyncio.run(run_episodes([task], engine, protocol=PROTOCOL, pool=pool, sampling=SamplingParams(temperature=0),
                                  limits=EpisodeLimits(max_new_tokens_per_turn=80, max_total_tokens=1500)))[0]
    assert tr.finish_reason is FinishReason.ANSWERED and tr.answer == "red"
    assert len(tr.steps) == 1 and tr.steps[0].result.ok and len(tr.images) == 2
    # (a) the loop's incremental tokens == a full render of the same conversation, token for token
    full = ChatRenderer(proc).render_ids(tr.messages(), tr.assistant_token_ids())
    assert full.token_ids == tr.token_ids and full.assistant_mask == tr.loss_mask
    pad = proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert tr.token_ids.count(pad) == len(tr.images) == 2
    assert tr.token_ids == target.token_ids  # and the model reproduced what it memorised


def test_sampling_logprobs_match_a_training_forward_pass(taught: tuple[Any, Any, Task, Any], pool: Any) -> None:
    model, proc, task, _ = taught
    engine = HFEngine(model, proc, max_batch_size=4)
    temperature = 1.1
    trajs = asyncio.run(run_episodes([task], engine, protocol=PROTOCOL, pool=pool, samples_per_task=8, seed=3,
                                     sampling=SamplingParams(temperature=temperature),
                                     limits=EpisodeLimits(max_new_tokens_per_turn=60, max_total_tokens=1200)))
    assert engine.stats["batches"] < engine.stats["requests"]  # concurrent requests were batched
    assert engine.stats["episodes_in_flight"] == 0  # every episode told the batcher it was done
    checked = 0
    for tr in trajs:
        inputs = trainer_inputs(tr.token_ids, [im.array for im in tr.images], proc, loss_mask=tr.loss_mask,
                                logprobs=tr.logprobs)
        with torch.no_grad():
            lp = token_logprobs(model, inputs, temperature=temperature)
        mask = inputs["loss_mask"].bool()
        diff = (lp[mask] - inputs["old_logprobs"][mask]).abs().max().item()
        assert diff < 1e-4, (tr.id, diff)
        checked += int(mask.sum())
    assert checked > 100
    assert sum(len(t.steps) for t in trajs) >= 1  # multi-turn with observations and images


def test_stop_strings_keep_the_completing_token(taught: tuple[Any, Any, Task, Any]) -> None:
    model, proc, task, target = taught
    engine = HFEngine(model, proc)
    prompt = target.token_ids[: target.prompt_len]
    image = target.images[0].array
    out = asyncio.run(engine.generate(prompt, [image], SamplingParams(temperature=0, max_new_tokens=80, stop=("</code>",))))
    assert out.finish_reason == "stop" and out.stop_reason == "</code>" and out.text.endswith("</code>")
    assert out.token_ids == target.token_ids[target.prompt_len: target.turns[0].start + len(out.token_ids)]
    short = asyncio.run(engine.generate(prompt, [image], SamplingParams(temperature=0, max_new_tokens=3)))
    assert short.finish_reason == "length" and len(short.token_ids) == 3 and short.stop_reason is None


def test_a_seeded_request_samples_the_same_tokens_in_any_batch(taught: tuple[Any, Any, Task, Any]) -> None:
    model, proc, task, target = taught
    engine = HFEngine(model, proc, max_batch_size=8)
    prompt = target.token_ids[: target.prompt_len]
    image = target.images[0].array
    other = ChatRenderer(proc).prompt_ids(PROTOCOL.initial_messages("Something else entirely?", [(32, 32)]))

    def params(seed: int) -> SamplingParams:
        return SamplingParams(temperature=1.5, top_p=0.95, top_k=50, max_new_tokens=40, seed=seed)

    async def alone() -> list:
        return [await engine.generate(prompt, [image], params(7))]

    async def crowded() -> list:
        reqs = [engine.generate(other, [np.zeros((32, 32, 3), np.uint8)], params(100 + i)) for i in range(3)]
        return await asyncio.gather(*reqs[:2], engine.generate(prompt, [image], params(7)), reqs[2],
                                    engine.generate(prompt, [image], params(8)))

    (a,) = asyncio.run(alone())
    b = asyncio.run(crowded())
    assert engine.stats["batches"] == 2  # alone, then all five together
    assert b[2].token_ids == a.token_ids and b[2].logprobs == pytest.approx(a.logprobs, abs=1e-4)
    assert b[4].token_ids != a.token_ids  # another seed samples something else


def test_placeholder_tokens_are_never_sampled(tiny_dirs: dict[str, Path]) -> None:
    model, proc = load_tiny(tiny_dirs["qwen2_5_vl"])
    tok = proc.tokenizer
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    with torch.no_grad():  # make the placeholder the model's overwhelming favourite
        model.lm_head.weight[pad] = model.model.language_model.norm.weight.detach().sign() * 50
    engine = HFEngine(model, proc)
    renderer = ChatRenderer(proc)
    prompt = renderer.prompt_ids(PROTOCOL.initial_messages("Q?", [(32, 32)]))
    image = np.zeros((32, 32, 3), np.uint8)

    async def three() -> list:
        return await asyncio.gather(*[engine.generate(prompt, [image], SamplingParams(temperature=1.0, max_new_tokens=20))
                                      for _ in range(3)])

    outs = asyncio.run(three())
    banned = set(engine.banned_ids)
    assert pad in banned and tok.convert_tokens_to_ids("<|vision_start|>") in banned
    assert all(not banned & set(o.token_ids) for o in outs)


def test_expansion_rejects_placeholder_mismatch(processor: Any) -> None:
    renderer = ChatRenderer(processor)
    ids = renderer.prompt_ids(PROTOCOL.initial_messages("Q?", [(64, 64)]))
    image = np.zeros((64, 64, 3), np.uint8)
    ex = expand_sequence(ids, [image], processor)
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    n = int(ex.image_grid_thw[0].prod()) // processor.image_processor.merge_size ** 2
    assert ex.input_ids.count(pad) == n and len(ex.input_ids) == len(ids) - 1 + n
    assert ex.map_array(list(range(len(ids))), -1)[ex.positions[5]] == 5
    with pytest.raises(ValueError, match="1 image placeholder.*2 image"):
        expand_sequence(ids, [image, image], processor)
    with pytest.raises(ValueError, match="already-expanded"):
        expand_sequence(ex.input_ids, [image], processor)


def test_batches_run_on_one_engine_thread_across_event_loops(tiny_dirs: dict[str, Path]) -> None:
    """Every `model.generate` runs on the engine's own thread (bound to the model's CUDA device on a GPU), not on
    whichever thread of asyncio's default pool is free."""
    import threading

    model, proc = load_tiny(tiny_dirs["qwen2_5_vl"])
    threads: list[int] = []
    real = model.generate

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    model.generate = recording
    engine = HFEngine(model, proc, max_batch_size=1)
    prompt = ChatRenderer(proc).prompt_ids(PROTOCOL.initial_messages("Q?", []))

    async def some(n: int) -> list:
        return await asyncio.gather(*[engine.generate(prompt, [], SamplingParams(temperature=1.0, max_new_tokens=2,
                                                                                 seed=i)) for i in range(n)])

    asyncio.run(some(3))
    asyncio.run(some(2))  # a second event loop: the batcher restarts, the thread stays
    assert len(threads) == 5 and len(set(threads)) == 1 and threads[0] != threading.get_ident()
