"""The colocated vLLM engine's thread discipline and bookkeeping, on CPU, with a stand-in for the `vllm` module.

This is NOT a vLLM test (vLLM cannot be installed here; tests/rollout/test_engine_vllm_gpu.py runs the real one).
The stand-in records which thread each backend call ran on and in what order, and answers `generate` with fixed
token ids, so that what the engine itself does around vLLM is checked: every call (the `LLM` constructor
included) runs on one thread, that thread bound its device before the constructor ran, `update_weights` loads
every tensor and resets the caches before the next `generate`, the weights version reaches every output's
metadata, and sleep/wake are ordered with generation.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from rollout.engines.base import EngineError, SamplingParams
from rollout.engines.device_thread import DeviceThread
from rollout.protocols import get_protocol
from rollout.render import ChatRenderer

PROTOCOL = get_protocol("codevl")


@dataclass
class _Logprob:
    logprob: float


class _Log:
    """What the stand-in backend saw: (call, thread ident), in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def add(self, what: str) -> None:
        with self.lock:
            self.calls.append((what, threading.get_ident()))

    def names(self) -> list[str]:
        return [c for c, _ in self.calls]


def _standin_vllm(log: _Log, reply_ids: list[int]) -> Any:
    """A module-like object with `LLM` and `SamplingParams`, shaped like the parts of vLLM 0.31 the engine uses."""

    class _Model:
        def __init__(self) -> None:
            self.loaded: dict[str, Any] = {}

        def load_weights(self, weights: list[tuple[str, Any]]) -> set[str]:
            for name, t in weights:
                log.add(f"load_weights:{name}")
                self.loaded[name] = t
            return {n for n, _ in weights}

    class _LLMEngine:
        def __init__(self) -> None:
            self.model_executor = SimpleNamespace(driver_worker=SimpleNamespace(model_runner=SimpleNamespace(
                model=_Model())))

        def reset_encoder_cache(self) -> None:
            log.add("reset_encoder_cache")

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            log.add("LLM.__init__")
            self.kwargs = kwargs
            self.llm_engine = _LLMEngine()

        def generate(self, prompts: list[dict[str, Any]], sampling_params: list[Any], use_tqdm: bool) -> list[Any]:
            log.add(f"generate:{len(prompts)}")
            out = SimpleNamespace(token_ids=list(reply_ids), logprobs=[{t: _Logprob(-0.5)} for t in reply_ids],
                                  finish_reason="stop", stop_reason=None)
            return [SimpleNamespace(prompt_token_ids=[], outputs=[out], num_cached_tokens=0) for _ in prompts]

        def sleep(self, level: int) -> None:
            log.add(f"sleep:{level}")

        def wake_up(self, tags: list[str]) -> None:
            log.add(f"wake_up:{','.join(tags)}")

        def reset_prefix_cache(self) -> bool:
            log.add("reset_prefix_cache")
            return True

        def reset_mm_cache(self) -> None:
            log.add("reset_mm_cache")

    return SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: dict(kw), __version__="stand-in")


@dataclass
class _Bound:
    """Records the device binding: which index, on which thread, and what the log held at that moment."""

    log: _Log
    seen: list[tuple[int, int, int]] = field(default_factory=list)

    def __call__(self, index: int) -> None:
        self.seen.append((index, threading.get_ident(), len(self.log.calls)))


@pytest.fixture
def engine_parts(tiny_dirs: dict[str, Path], processor: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from rollout.engines import vllm_colocate

    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "3")  # the device thread must bind cuda:3, not cuda:0
    log = _Log()
    bound = _Bound(log)
    # The engine binds its thread with DeviceThread's default binder; record it instead (no CUDA here).
    real = DeviceThread.__init__

    def init(self: DeviceThread, device_index: int | None = None, **kw: Any) -> None:
        real(self, device_index, bind=bound, name=kw.get("name", "codevl-device"))

    monkeypatch.setattr(vllm_colocate.DeviceThread, "__init__", init)
    reply = processor.tokenizer.encode("The answer is red.", add_special_tokens=False) + [
        processor.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    eng = vllm_colocate.VLLMColocateEngine(str(tiny_dirs["qwen2_5_vl"]), processor=processor,
                                           vllm_module=_standin_vllm(log, reply), check_image_tokens=False)
    yield eng, log, bound
    eng.close()


def _prompt(processor: Any) -> list[int]:
    return ChatRenderer(processor).prompt_ids(PROTOCOL.initial_messages("What colour?", [(64, 48)]))


def _image() -> np.ndarray:
    return np.random.RandomState(0).randint(0, 255, (48, 64, 3), dtype=np.uint8)


def _sampling() -> SamplingParams:
    return SamplingParams(max_new_tokens=16, temperature=1.0, stop=PROTOCOL.stop, seed=1)


def test_every_backend_call_runs_on_one_thread_bound_to_local_rank_first(engine_parts: Any, processor: Any) -> None:
    eng, log, bound = engine_parts
    main = threading.get_ident()

    async def rollouts() -> list[Any]:
        return list(await asyncio.gather(*(eng.generate(_prompt(processor), [_image()], _sampling())
                                           for _ in range(4))))

    outs = asyncio.run(rollouts())
    eng.sleep(level=1)
    eng.wake_up()
    eng.update_weights([("lm_head.weight", np.zeros((2, 2), np.float32))])
    asyncio.run(rollouts())  # a new event loop: the batcher restarts, the backend thread does not

    assert bound.seen[0][0] == 3  # LOCAL_RANK
    device_thread = bound.seen[0][1]
    assert len(bound.seen) == 1 and bound.seen[0][2] == 0  # bound once, before the first backend call
    assert log.names()[0] == "LLM.__init__"
    threads = {t for _, t in log.calls}
    assert threads == {device_thread} and device_thread != main
    assert all(o.metadata["weights_version"] == 0 and o.metadata["engine"] == "vllm_colocate" for o in outs)
    assert outs[0].text == "The answer is red." and outs[0].finish_reason == "stop"


def test_update_weights_is_loaded_and_caches_reset_before_the_next_generate(engine_parts: Any, processor: Any) -> None:
    eng, log, _ = engine_parts

    async def one() -> Any:
        return await eng.generate(_prompt(processor), [_image()], _sampling())

    first = asyncio.run(one())
    names = [f"model.language_model.layers.{i}.mlp.up_proj.weight" for i in range(3)]
    pushed = iter([(n, np.full((2, 2), i, np.float32)) for i, n in enumerate(names)])
    assert eng.update_weights(pushed) == 1
    second = asyncio.run(one())
    calls = log.names()
    g1, g2 = calls.index("generate:1"), len(calls) - 1 - calls[::-1].index("generate:1")
    between = calls[g1 + 1:g2]
    # every tensor, in order, then the three cache resets, all before the second generation
    assert between == [f"load_weights:{n}" for n in names] + ["reset_prefix_cache", "reset_mm_cache",
                                                             "reset_encoder_cache"]
    assert (first.metadata["weights_version"], second.metadata["weights_version"]) == (0, 1)
    assert eng.weights_version == 1 and eng.stats["weights_version"] == 1
    with pytest.raises(ValueError, match="no tensors"):
        eng.update_weights([])


def test_sleep_then_generate_wakes_first_and_level_2_needs_new_weights(engine_parts: Any, processor: Any) -> None:
    eng, log, _ = engine_parts

    async def one() -> Any:
        return await eng.generate(_prompt(processor), [_image()], _sampling())

    eng.sleep(level=1)
    assert eng.sleeping
    asyncio.run(one())
    assert log.names()[-3:] == ["sleep:1", "wake_up:weights,kv_cache", "generate:1"] and not eng.sleeping
    eng.sleep(level=2)
    with pytest.raises(EngineError, match="discarded by sleep\\(level=2\\).*update_weights"):
        asyncio.run(one())
    eng.update_weights([("lm_head.weight", np.zeros((2, 2), np.float32))])
    assert log.names()[-5] == "wake_up:weights"  # weights woken before they are loaded
    asyncio.run(one())
    assert log.names()[-2:] == ["wake_up:kv_cache", "generate:1"]
    with pytest.raises(ValueError, match="unknown wake_up tags"):
        eng.wake_up(["cpu"])


def test_device_thread_runs_in_order_inline_when_nested_and_reports_a_failed_binding() -> None:
    seen: list[int] = []
    t = DeviceThread(5, bind=lambda i: seen.append(i))
    order: list[int] = []
    futs = [t.executor.submit(order.append, i) for i in range(50)]
    for f in futs:
        f.result()
    assert order == list(range(50)) and seen == [5]
    # a call made from the device thread runs inline instead of deadlocking
    assert t.call(lambda: t.call(threading.get_ident)) == t.ident
    with pytest.raises(RuntimeError, match="not on the engine's device thread"):
        t.check()
    t.shutdown()

    def broken(i: int) -> None:
        raise RuntimeError(f"LOCAL_RANK={i} but this process sees 1 CUDA device(s)")

    bad = DeviceThread(7, bind=broken)
    with pytest.raises(Exception, match="initializer|LOCAL_RANK=7"):
        bad.call(lambda: None)
    bad.shutdown()
