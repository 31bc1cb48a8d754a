"""The vLLM engines, really running vLLM on a GPU with the offline tiny Qwen2.5-VL model.

Skipped without CUDA (tests/conftest.py) and without vLLM (`pip install` the `vllm` extra on a GPU node:
CODEVL_EXTRAS=dev,deepspeed,vllm bash scripts/install.sh). Not yet run: vLLM cannot be installed on the machines
these were written on.

    .venv/bin/python -m pytest tests/rollout/test_engine_vllm_gpu.py -v

What they check: generation with images through the colocated engine (no banned token sampled, vLLM's expanded
prompt length equals the trainer's expansion, logprobs match a training forward pass, per-request seeds), sleep and
wake, `update_weights` changing generation (vision weights only: proves the encoder and prefix caches were reset)
and restoring it, `train.weight_sync.push_weights` from a LoRA model (vLLM generates as the merged model), the
server engine against a `vllm serve` subprocess launched by scripts/vllm_server.sh (same greedy tokens as the
colocated engine; images sent as content_parts), and NCCL weight sync to it (needs two GPUs: NCCL puts the trainer
and the server on different devices).

Knobs for the GPU machine: CODEVL_VLLM_TEST_LLM_KWARGS (JSON merged into `vllm.LLM(...)`, e.g. an attention backend
if the default one rejects the tiny model's head_dim of 16), CODEVL_VLLM_TEST_DTYPE (default float32, so logprobs
compare tightly with the fp32 training forward).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.gpu
vllm = pytest.importorskip("vllm", reason="vLLM is not installed (GPU extra: CODEVL_EXTRAS=dev,deepspeed,vllm)")
torch = pytest.importorskip("torch")

import sandbox  # noqa: E402
from rollout.engines.base import EngineError, SamplingParams  # noqa: E402
from rollout.engines.hf import BANNED_TOKENS  # noqa: E402
from rollout.expand import expand_sequence, trainer_inputs  # noqa: E402
from rollout.loop import EpisodeLimits, run_episodes  # noqa: E402
from rollout.protocols import get_protocol  # noqa: E402
from rollout.render import ChatRenderer  # noqa: E402
from tests.rollout.conftest import load_tiny, make_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = get_protocol("codevl")
DTYPE = os.environ.get("CODEVL_VLLM_TEST_DTYPE", "float32")
LLM_KWARGS = json.loads(os.environ.get("CODEVL_VLLM_TEST_LLM_KWARGS", "{}"))


def _images() -> list[np.ndarray]:
    rng = np.random.RandomState(0)
    return [rng.randint(0, 255, (80, 120, 3), dtype=np.uint8), rng.randint(0, 255, (64, 64, 3), dtype=np.uint8)]


def _prompt(processor: Any, n_images: int = 2) -> list[int]:
    sizes = [(120, 80), (64, 64)][:n_images]
    return ChatRenderer(processor).prompt_ids(PROTOCOL.initial_messages("What colour is the corner?", sizes))


def _greedy(n: int = 24) -> SamplingParams:
    return SamplingParams(max_new_tokens=n, temperature=0.0, stop=PROTOCOL.stop, seed=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train.model.tiny import build_tiny_model

    return build_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("vllm_tiny") / "qwen2_5_vl", seed=0)


@pytest.fixture(scope="module")
def hf(tiny: Path) -> tuple[Any, Any]:
    return load_tiny(tiny)  # fp32 on CPU: the trainer's view of the same weights


@pytest.fixture(scope="module")
def colocated(tiny: Path, hf: tuple[Any, Any]) -> Iterator[Any]:
    from rollout.engines.vllm_colocate import VLLMColocateEngine

    engine = VLLMColocateEngine(str(tiny), processor=hf[1], gpu_memory_utilization=0.25, max_model_len=4096,
                                enforce_eager=True, dtype=DTYPE, enable_sleep_mode=True, llm_kwargs=LLM_KWARGS)
    yield engine
    asyncio.run(engine.aclose())
    engine.close()


def test_colocated_generation_with_images(colocated: Any, hf: tuple[Any, Any]) -> None:
    _, proc = hf
    images = _images()
    prompt = _prompt(proc)
    sp = SamplingParams(max_new_tokens=48, temperature=1.0, stop=PROTOCOL.stop, seed=5)
    out = asyncio.run(colocated.generate(prompt, images, sp))
    banned = {proc.tokenizer.convert_tokens_to_ids(t) for t in BANNED_TOKENS}
    assert out.token_ids and not banned & set(out.token_ids)
    assert len(out.logprobs) == len(out.token_ids) and all(np.isfinite(out.logprobs)) and max(out.logprobs) <= 0
    assert out.finish_reason in ("stop", "length")
    # vLLM expanded the placeholders itself, to exactly the trainer's expansion
    assert out.metadata["prompt_tokens_expanded"] == len(expand_sequence(prompt, images, proc).input_ids)
    assert out.metadata["weights_version"] == colocated.weights_version
    again = asyncio.run(colocated.generate(prompt, images, sp))
    assert again.token_ids == out.token_ids  # same seed, same sample
    other = asyncio.run(colocated.generate(prompt, images, sp.with_(seed=6)))
    assert other.token_ids != out.token_ids
    with pytest.raises(EngineError, match="already expanded"):
        asyncio.run(colocated.generate(expand_sequence(prompt, images, proc).input_ids, images, sp))


def test_concurrent_requests_are_batched(colocated: Any, hf: tuple[Any, Any]) -> None:
    prompt, images = _prompt(hf[1]), _images()
    before = dict(colocated.stats)

    async def many() -> list[Any]:
        sp = SamplingParams(max_new_tokens=16, stop=PROTOCOL.stop)
        return list(await asyncio.gather(*(colocated.generate(prompt, images, sp.with_(seed=s)) for s in range(8))))

    outs = asyncio.run(many())
    assert len(outs) == 8
    assert colocated.stats["batches"] - before["batches"] < colocated.stats["requests"] - before["requests"]


def test_logprobs_match_a_training_forward_pass(colocated: Any, hf: tuple[Any, Any]) -> None:
    """vLLM's processed logprobs are log_softmax(logits / T) with the banned tokens excluded: compare with the fp32
    training forward under the same mask."""
    from train.logprobs import token_logprobs

    model, proc = hf
    images, prompt = _images(), _prompt(proc)
    temperature = 1.3
    out = asyncio.run(colocated.generate(prompt, images, SamplingParams(max_new_tokens=32, temperature=temperature,
                                                                        seed=11)))
    seq = prompt + out.token_ids
    inputs = trainer_inputs(seq, images, proc, loss_mask=[0] * len(prompt) + [1] * len(out.token_ids),
                            logprobs=[0.0] * len(prompt) + out.logprobs)
    banned = [proc.tokenizer.convert_tokens_to_ids(t) for t in BANNED_TOKENS]
    bias = torch.zeros(model.lm_head.weight.shape[0])
    bias[banned] = -1e4  # the engine's ban, as the trainer would see it
    hook = model.lm_head.register_forward_hook(lambda m, i, o: o + bias.to(o.dtype))
    try:
        with torch.no_grad():
            lp = token_logprobs(model, inputs, temperature=temperature)
    finally:
        hook.remove()
    mask = inputs["loss_mask"].bool()
    diff = (lp[mask] - inputs["old_logprobs"][mask]).abs()
    tol = 1e-3 if DTYPE == "float32" else 5e-2
    assert diff.mean().item() < tol, diff.max().item()


def test_sleep_and_wake(colocated: Any, hf: tuple[Any, Any]) -> None:
    model, proc = hf
    prompt, images = _prompt(proc), _images()
    base = asyncio.run(colocated.generate(prompt, images, _greedy()))
    colocated.sleep(level=1)
    assert colocated.sleeping
    colocated.wake_up()
    assert asyncio.run(colocated.generate(prompt, images, _greedy())).token_ids == base.token_ids
    colocated.sleep(level=2)  # weights dropped: generation must wait for new weights
    with pytest.raises(EngineError, match="update_weights"):
        asyncio.run(colocated.generate(prompt, images, _greedy()))
    colocated.update_weights((n, p.data.to("cuda")) for n, p in model.named_parameters())
    colocated.wake_up()
    assert asyncio.run(colocated.generate(prompt, images, _greedy())).token_ids == base.token_ids


def test_update_weights_changes_generation_and_resets_the_caches(colocated: Any, hf: tuple[Any, Any]) -> None:
    model, proc = hf
    prompt, images = _prompt(proc), _images()
    base = asyncio.run(colocated.generate(prompt, images, _greedy()))
    asyncio.run(colocated.generate(prompt, images, _greedy()))  # the image's encoder output and prefix are now cached
    version = colocated.weights_version
    visual = {n: p.data.clone() for n, p in model.named_parameters() if ".visual." in f".{n}"}
    assert visual
    try:
        g = torch.Generator().manual_seed(0)
        for n, p in model.named_parameters():
            if n in visual:
                p.data.add_(torch.randn(p.shape, generator=g) * 0.5)
        # only vision weights change: the same text prefix and the same image hash would hit stale caches
        assert colocated.update_weights((n, p.data.to("cuda")) for n, p in model.named_parameters()) == version + 1
        changed = asyncio.run(colocated.generate(prompt, images, _greedy()))
        assert changed.metadata["weights_version"] == version + 1
        assert changed.logprobs[: len(base.logprobs)] != base.logprobs[: len(changed.logprobs)]
    finally:
        for n, p in model.named_parameters():
            if n in visual:
                p.data.copy_(visual[n])
    colocated.update_weights((n, p.data.to("cuda")) for n, p in model.named_parameters())
    restored = asyncio.run(colocated.generate(prompt, images, _greedy()))
    assert restored.token_ids == base.token_ids
    assert np.allclose(restored.logprobs, base.logprobs, atol=1e-4 if DTYPE == "float32" else 1e-2)


def test_push_weights_merges_a_lora_adapter_into_the_colocated_engine(colocated: Any, hf: tuple[Any, Any],
                                                                      tiny: Path) -> None:
    """train.weight_sync.push_weights from a PEFT LoRA model: vLLM then generates as the merged model does (greedy,
    compared with the HF engine on the merged copy), and pushing the plain model restores the original outputs."""
    import copy

    from rollout.engines.hf import HFEngine
    from train.config.model import LoraConfig, ModelConfig
    from train.model.loading import load_model
    from train.weight_sync import push_weights

    model, proc = hf
    prompt, images = _prompt(proc), _images()
    base = asyncio.run(colocated.generate(prompt, images, _greedy()))
    peft_model, _ = load_model(ModelConfig(name_or_path=str(tiny), dtype="float32", attn_implementation="eager",
                                           freeze_vision_tower=False, freeze_projector=False,
                                           lora=LoraConfig(r=8, alpha=16, dropout=0.0)))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    version = colocated.weights_version
    try:
        pushed = push_weights(peft_model, colocated)
        assert pushed == len(list(model.named_parameters())) and colocated.weights_version == version + 1
        merged = copy.deepcopy(peft_model).merge_and_unload().eval()
        reference = HFEngine(merged, proc)
        want = asyncio.run(reference.generate(prompt, images, _greedy()))
        got = asyncio.run(colocated.generate(prompt, images, _greedy()))
        assert got.metadata["weights_version"] == version + 1
        assert got.token_ids == want.token_ids and got.token_ids != base.token_ids
    finally:
        push_weights(model, colocated)
    assert asyncio.run(colocated.generate(prompt, images, _greedy())).token_ids == base.token_ids


@pytest.mark.skipif(not hasattr(sandbox, "SandboxPool"), reason="needs sandbox.SandboxPool")
def test_full_episode_with_the_colocated_engine(colocated: Any, pool: Any, tmp_path: Path) -> None:
    task = make_task(tmp_path)
    tr = asyncio.run(run_episodes([task], colocated, protocol=PROTOCOL, pool=pool, samples_per_task=2, seed=1,
                                  limits=EpisodeLimits(max_turns=3, max_new_tokens_per_turn=64, max_total_tokens=2048)))
    for t in tr:
        t.check()
        assert len(t.logprobs) == len(t.token_ids) and sum(t.loss_mask) > 0


# ---- the server engine -----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny: Path) -> Iterator[tuple[str, int]]:
    """`vllm serve` on the tiny model via scripts/vllm_server.sh; on the second GPU when there is one (weight sync
    over NCCL needs the trainer and the server on different devices)."""
    port = _free_port()
    gpu = 1 if torch.cuda.device_count() > 1 else 0
    vllm_bin = shutil.which("vllm") or str(Path(sys.executable).with_name("vllm"))
    env = {**os.environ, "PORT": str(port), "GPU_MEM": "0.25", "MAX_MODEL_LEN": "4096", "VLLM_BIN": vllm_bin,
           "CUDA_VISIBLE_DEVICES": str(gpu)}
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "vllm_server.sh"), str(tiny), "--enforce-eager",
                             "--dtype", DTYPE], env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.time() + 900
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("vllm serve did not come up in 15 minutes")
            time.sleep(2)
        yield base, gpu
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("transport", ["content_parts", "features"])
def test_server_engine_generates_like_the_colocated_engine(server: tuple[str, int], colocated: Any,
                                                           hf: tuple[Any, Any], transport: str) -> None:
    from rollout.engines.vllm_server import VLLMServerEngine

    base, _ = server
    proc = hf[1]
    engine = VLLMServerEngine(base, proc, image_transport=transport)
    prompt, images = _prompt(proc), _images()
    out = asyncio.run(engine.generate(prompt, images, _greedy()))
    ref = asyncio.run(colocated.generate(prompt, images, _greedy()))
    assert out.token_ids == ref.token_ids and out.text == ref.text and out.finish_reason == ref.finish_reason
    assert np.allclose(out.logprobs, ref.logprobs, atol=1e-3 if DTYPE == "float32" else 5e-2)
    assert out.metadata["prompt_tokens_expanded"] == len(expand_sequence(prompt, images, proc).input_ids)
    banned = {proc.tokenizer.convert_tokens_to_ids(t) for t in BANNED_TOKENS}
    sampled = asyncio.run(engine.generate(prompt, images, SamplingParams(max_new_tokens=48, seed=3)))
    assert not banned & set(sampled.token_ids)
    assert asyncio.run(engine.generate(prompt, images, SamplingParams(max_new_tokens=48, seed=3))).token_ids == \
           sampled.token_ids
    if transport == "features":
        assert engine.stats["feature_cache_hits"] > 0  # images are rendered once
    else:
        assert engine.stats["png_encodes"] == len(images) and engine.stats["renders"] == 0  # encoded once
    with pytest.raises(EngineError, match="already expanded"):
        asyncio.run(engine.generate(expand_sequence(prompt, images, proc).input_ids, images, _greedy()))
    asyncio.run(engine.aclose())


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                    reason="NCCL weight sync needs the trainer and the server on two different GPUs")
def test_server_weight_sync_over_nccl(server: tuple[str, int], hf: tuple[Any, Any]) -> None:
    from rollout.engines.vllm_server import VLLMServerEngine

    base, _ = server
    model, proc = hf
    engine = VLLMServerEngine(base, proc)
    prompt, images = _prompt(proc), _images()
    before = asyncio.run(engine.generate(prompt, images, _greedy()))
    engine.init_weight_sync(device=0)
    visual = {n: p.data.clone() for n, p in model.named_parameters() if ".visual." in f".{n}"}
    try:
        for n, p in model.named_parameters():
            if n in visual:
                p.data.add_(torch.randn_like(p) * 0.5)
        assert engine.update_weights((n, p.data.to("cuda:0")) for n, p in model.named_parameters()) == 1
        changed = asyncio.run(engine.generate(prompt, images, _greedy()))
        assert changed.metadata["weights_version"] == 1 and changed.logprobs != before.logprobs
    finally:
        for n, p in model.named_parameters():
            if n in visual:
                p.data.copy_(visual[n])
    engine.update_weights((n, p.data.to("cuda:0")) for n, p in model.named_parameters())  # metadata reused
    assert asyncio.run(engine.generate(prompt, images, _greedy())).token_ids == before.token_ids
    engine.close_weight_sync()
    asyncio.run(engine.aclose())
