"""train.weight_sync on CPU with the offline tiny Qwen-VL models: the names vLLM loads, LoRA merged exactly as PEFT's
own `merge_and_unload`, modules_to_save, the ZeRO-3 gather (DeepSpeed's CPU accelerator, one gloo rank, in a
subprocess: a real partitioned model, not a simulated shard layout), and `push_weights`' dispatch per engine kind.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from train.config.model import LoraConfig, ModelConfig  # noqa: E402
from train.model.loading import load_model  # noqa: E402
from train.weight_sync import clean_name, hf_weights, push_weights, weight_metadata  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from train.model.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("ws_tiny")
    return {arch: build_tiny_model(arch, root / arch, seed=0) for arch in ("qwen2_5_vl", "qwen3_vl")}


def _load(path: Path, lora: LoraConfig | None = None) -> tuple[Any, Any]:
    return load_model(ModelConfig(name_or_path=str(path), dtype="float32", attn_implementation="eager",
                                  freeze_vision_tower=False, freeze_projector=False, lora=lora))


def _randomize_lora_b(model: Any, seed: int = 0) -> None:
    """PEFT initialises B to zero (the merge would change nothing): give it values so the merge is tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


class _Wrapper(torch.nn.Module):
    """Shaped like a DeepSpeed engine / DDP: the model under `.module`."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.module = module


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_plain_model_pushes_every_parameter_once_under_its_hf_name_without_copies(tiny: dict[str, Path],
                                                                                  arch: str) -> None:
    model, _ = _load(tiny[arch])
    expected = list(model.named_parameters())  # transformers' own names; a tied lm_head appears once
    pushed = list(hf_weights(_Wrapper(model)))
    assert [n for n, _ in pushed] == [n for n, _ in expected]
    assert all(t.data_ptr() == p.data_ptr() for (_, t), (_, p) in zip(pushed, expected, strict=True))
    assert any(n.startswith("model.visual.") for n, _ in pushed)
    assert any(n.startswith("model.language_model.layers.0.") for n, _ in pushed)
    tied = bool(model.config.tie_word_embeddings)
    assert ("lm_head.weight" in dict(pushed)) is (not tied)  # qwen3_vl's tiny model ties it: pushed once
    assert weight_metadata(model) == [(n, "float32", list(t.shape)) for n, t in pushed]


def test_clean_name_strips_wrapper_prefixes() -> None:
    assert clean_name("module.module.model.language_model.norm.weight") == "model.language_model.norm.weight"
    wrapped = "model.layers.0._checkpoint_wrapped_module.mlp.up_proj.weight"
    assert clean_name(wrapped) == "model.layers.0.mlp.up_proj.weight"
    assert clean_name("_orig_mod.lm_head.weight") == "lm_head.weight"


def test_lora_is_merged_exactly_like_peft_merge_and_unload(tiny: dict[str, Path]) -> None:
    model, _ = _load(tiny["qwen2_5_vl"], LoraConfig(r=4, alpha=8, dropout=0.0))
    _randomize_lora_b(model)
    reference = dict(copy.deepcopy(model).merge_and_unload().named_parameters())
    inner = "model.language_model.layers.0.self_attn.q_proj"
    peft_names = dict(model.named_parameters())
    base = peft_names[f"base_model.model.{inner}.base_layer.weight"].detach().clone()
    a = peft_names[f"base_model.model.{inner}.lora_A.default.weight"].detach()
    b = peft_names[f"base_model.model.{inner}.lora_B.default.weight"].detach()

    pushed = dict(hf_weights(model))
    assert list(pushed) == list(reference)  # same names, same order: base names, no lora_A/lora_B
    assert not any("lora_" in n or "base_layer" in n or n.startswith("base_model") for n in pushed)
    for n, t in pushed.items():
        assert torch.allclose(t, reference[n], atol=1e-6, rtol=0), n
    # by hand: W + (alpha / r) * B @ A, alpha / r = 8 / 4 = 2
    assert torch.allclose(pushed[f"{inner}.weight"], base + 2.0 * (b @ a), atol=1e-6, rtol=0)
    assert float((pushed[f"{inner}.weight"] - base).abs().max()) > 1e-3  # the merge changed something
    # the trainer's module is left as it was: nothing merged into it
    assert torch.equal(peft_names[f"base_model.model.{inner}.base_layer.weight"], base)
    # an adapter already merged into the base weight (merge_adapter) is not added a second time
    model.merge_adapter()
    again = {n: t.clone() for n, t in hf_weights(model)}  # the base weight itself: copy before unmerging
    model.unmerge_adapter()
    assert torch.allclose(again[f"{inner}.weight"], reference[f"{inner}.weight"], atol=1e-6, rtol=0)
    assert weight_metadata(model) == [(n, "float32", list(t.shape)) for n, t in pushed.items()]


def test_modules_to_save_pushes_the_trained_copy_under_the_module_name(tiny: dict[str, Path]) -> None:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    model, _ = _load(tiny["qwen2_5_vl"])
    peft_model = get_peft_model(model, PeftLoraConfig(r=2, lora_alpha=4, target_modules=r".*language_model.*\.v_proj$",
                                                      modules_to_save=["lm_head"]))
    _randomize_lora_b(peft_model, seed=1)
    with torch.no_grad():
        peft_model.base_model.model.lm_head.modules_to_save["default"].weight.add_(1.0)  # trained copy != original
    reference = dict(copy.deepcopy(peft_model).merge_and_unload().named_parameters())
    pushed = dict(hf_weights(peft_model))
    assert list(pushed) == list(reference)
    assert not any("modules_to_save" in n or "original_module" in n for n in pushed)
    trained = peft_model.base_model.model.lm_head.modules_to_save["default"].weight
    assert torch.equal(pushed["lm_head.weight"], trained.detach())
    for n, t in pushed.items():
        assert torch.allclose(t, reference[n], atol=1e-6, rtol=0), n


def test_lora_variants_that_are_not_merged_are_refused(tiny: dict[str, Path]) -> None:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    model, _ = _load(tiny["qwen2_5_vl"])
    dora = get_peft_model(model, PeftLoraConfig(r=2, target_modules=r".*language_model.*\.q_proj$", use_dora=True))
    with pytest.raises(NotImplementedError, match="DoRA"):
        list(hf_weights(dora))


class _Recorder:
    """Stands in for a vLLM engine's `update_weights` (the real ones need vLLM): consumes and records the stream."""

    def __init__(self, kind: str) -> None:
        self.weight_sync = kind
        self.name = f"recorder-{kind}"
        self.got: list[tuple[str, Any]] = []
        self.metadata: list[tuple[str, str, list[int]]] | None = None

    def update_weights(self, stream: Any, *, metadata: Any = None) -> int:
        self.got = [(n, t.clone()) for n, t in stream]
        self.metadata = metadata
        return 1


def test_push_weights_dispatches_on_the_engines_weight_sync(tiny: dict[str, Path]) -> None:
    from rollout.engines.base import SamplingParams
    from rollout.engines.hf import HFEngine
    from rollout.protocols import get_protocol
    from rollout.render import ChatRenderer

    model, proc = _load(tiny["qwen2_5_vl"])
    n_params = len(list(model.named_parameters()))
    # shared weights (the HF engine): nothing copied, the version counts the update and reaches the outputs
    hf = HFEngine(model, proc)
    prompt = ChatRenderer(proc).prompt_ids(get_protocol("codevl").initial_messages("Hi?", []))
    greedy = SamplingParams(max_new_tokens=2, temperature=0)

    async def gen() -> Any:
        out = await hf.generate(prompt, [], greedy)
        await hf.aclose()
        return out

    assert asyncio.run(gen()).metadata["weights_version"] == 0
    assert push_weights(model, hf) == 0 and hf.weights_version == 1
    assert asyncio.run(gen()).metadata["weights_version"] == 1
    # every rank into its own engine
    per_rank = _Recorder("per_rank")
    assert push_weights(_Wrapper(model), per_rank) == n_params == len(per_rank.got)
    assert per_rank.got[0][0] == next(iter(model.named_parameters()))[0]
    # one server: the main process pushes, with the metadata announced first matching the stream
    server = _Recorder("main_process")
    assert push_weights(model, server) == n_params
    assert server.metadata == [(n, str(t.dtype).removeprefix("torch."), list(t.shape)) for n, t in server.got]
    other_rank = SimpleNamespace(is_main_process=False, unwrap_model=lambda m: m)
    idle = _Recorder("main_process")
    assert push_weights(model, idle, accelerator=other_rank) == 0 and idle.got == []  # no ZeRO-3: nothing to join
    assert push_weights(model, SimpleNamespace(weight_sync="none")) == 0
    with pytest.raises(ValueError, match="weight_sync='sometimes'.*none, shared, per_rank, main_process"):
        push_weights(model, SimpleNamespace(weight_sync="sometimes", name="odd"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_zero3_gathers_one_module_at_a_time_and_merges_lora(tiny: dict[str, Path]) -> None:
    """A real ZeRO-3 partition (DeepSpeed's CPU accelerator, one gloo rank) in a subprocess, since DeepSpeed and
    torch.distributed keep process-wide state; ~10-15 s, the only way to check the gather path without a GPU."""
    pytest.importorskip("deepspeed")
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "train" / "zero3_worker.py"), str(tiny["qwen2_5_vl"]),
                           str(_free_port())], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["partitioned"] == r["params"] > 50  # every parameter really sharded (numel 0 outside a gather)
    # at most one module's parameters are gathered at a time: a LoRA q_proj's weight, bias, A and B
    assert r["most_available"] <= 4 and r["after"] == 0
    assert r["pushed"] == r["reference"]  # the names and order of PEFT merge_and_unload().named_parameters()
    assert r["max_diff"] is not None and r["max_diff"] <= 1e-6  # equal to PEFT's merge_and_unload
    assert r["merge_effect"] > 1e-3 and r["meta_matches"]
