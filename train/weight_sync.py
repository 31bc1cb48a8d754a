"""Push the trainer's weights to the generation engine after each optimizer step, in the names vLLM loads.

    n = push_weights(model, engine, accelerator=accelerator)   # every rank, after each optimizer step

`push_weights` dispatches on the engine's `weight_sync` (`rollout.engines.base`, "Weights"):

- "shared" (`hf`): the engine generates with the trainer's own module; nothing is copied, its `weights_version` is
  bumped (`engine.weights_updated()`).
- "per_rank" (`vllm_colocate`): every rank streams `hf_weights(model)` into its own engine
  (`engine.update_weights`).
- "main_process" (`vllm_server`): the main process streams into the one server (`engine.update_weights(...,
  metadata=weight_metadata(model))`, so the server learns every tensor's name, dtype and shape up front without a
  second gather); under ZeRO-3 the other ranks walk the same gathers without pushing (a gather is a collective:
  every rank must take part, in the same order).
- "none" (scripted engines): nothing.

`hf_weights(model)` yields `(name, tensor)` in Hugging Face checkpoint names (`model.language_model.layers.0...`,
`model.visual...`, `lm_head.weight`), which vLLM's `load_weights` maps onto its own modules. It handles:

- wrappers: a DeepSpeed engine or DDP (`module.`), `accelerator.unwrap_model`, activation-checkpoint and
  `torch.compile` wrappers (`_checkpoint_wrapped_module.`, `_orig_mod.`) are unwrapped or stripped;
- PEFT LoRA: the adapter is merged into the pushed weight, `W + scaling * B @ A` summed over the active adapters
  (PEFT's own merge rule; `fan_in_fan_out` transposes), under the base layer's name: PEFT's
  `base_model.model.X.base_layer.weight` is pushed as `X.weight`, `lora_A`/`lora_B` are not pushed, and the
  trainer's module is left unmerged (nothing is written to it). `modules_to_save` copies are pushed under the
  wrapped module's name (`X.modules_to_save.default.weight` as `X.weight`; `X.original_module.*` is not pushed).
  DoRA, LoRA bias and LoRA on embeddings or convolutions are refused with a clear error, not pushed wrongly;
- DeepSpeed ZeRO-3: parameters are gathered one module at a time (`deepspeed.zero.GatheredParameters` over that
  module's own parameters; for a LoRA layer its base weight and adapter matrices together), the tensors built
  while gathered, and released before the next module: at most one module's full weights exist at once (the
  largest is the embedding or `lm_head`), never the whole model. ZeRO-2 and plain DDP keep full parameters on
  every rank and need no gather.

A parameter shared by two modules (tied embeddings) is pushed once, under its first name, as `named_parameters`
does. Buffers are not pushed (vLLM computes its own rotary tables).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Name fragments that wrappers insert and vLLM does not know.
WRAPPER_FRAGMENTS: tuple[str, ...] = ("_checkpoint_wrapped_module.", "_orig_mod.", "_fsdp_wrapped_module.")
# Fragments that must never reach vLLM: a PEFT structure this module does not understand left them in a name.
PEFT_FRAGMENTS: tuple[str, ...] = ("lora_", ".base_layer.", "modules_to_save.", "original_module.", "base_model.model.")


@dataclass
class _Unit:
    """One module's worth of work: the parameters gathered together, and the tensors built from them."""

    gather: list[Any]
    tensors: list[tuple[str, Callable[[], Any], Any]]  # (HF name, build while gathered, parameter giving dtype/shape)


def clean_name(name: str) -> str:
    """`name` without leading `module.` prefixes (DeepSpeed engine, DDP) and wrapper fragments."""
    while name.startswith("module."):
        name = name[len("module."):]
    for frag in WRAPPER_FRAGMENTS:
        name = name.replace(frag, "")
    return name


def unwrap(model: Any, accelerator: Any | None = None) -> Any:
    """The Hugging Face (or PEFT) module inside DeepSpeed / DDP / accelerate wrappers."""
    if accelerator is not None:
        model = accelerator.unwrap_model(model)
    while True:
        inner = getattr(model, "module", None)
        if inner is None or not hasattr(inner, "named_parameters") or inner is model:
            return model
        model = inner


def is_zero3(param: Any) -> bool:
    """Whether `param` is partitioned by DeepSpeed ZeRO-3 (it carries DeepSpeed's `ds_id`)."""
    return hasattr(param, "ds_id")


def full_shape(param: Any) -> list[int]:
    """The parameter's shape before partitioning (ZeRO-3 keeps it in `ds_shape`)."""
    return [int(s) for s in (param.ds_shape if is_zero3(param) else param.shape)]


@contextlib.contextmanager
def gathered(params: list[Any]) -> Iterator[None]:
    """Full copies of `params` for the duration of the block when they are ZeRO-3 partitioned (a collective: every
    rank must enter it with the same parameters); nothing otherwise. Read-only: nothing is written back."""
    sharded = [p for p in params if is_zero3(p)]
    if not sharded:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(sharded, modifier_rank=None):
        yield


def _peft_root(model: Any) -> Any | None:
    """The wrapped Hugging Face model of a PEFT model (`model.base_model.model`), or None for a plain model."""
    if not hasattr(model, "peft_config"):
        return None
    return model.base_model.model


def _lora_unit(layer: Any, prefix: str) -> _Unit:
    """The merged weight (and bias) of one LoRA-wrapped linear layer."""
    from peft.tuners import lora

    base = layer.get_base_layer()
    if not isinstance(layer, lora.Linear):
        raise NotImplementedError(f"{prefix.rstrip('.')}: LoRA on {type(layer).__name__} layers cannot be merged for "
                                  "weight sync; target linear layers only (model.lora.target_modules)")
    if layer.merged or layer.disable_adapters:
        adapters: list[str] = []  # already merged into the base weight, or off: the base weight is the policy
    else:
        adapters = [a for a in layer.active_adapters if a in layer.lora_A]
    for a in adapters:
        if layer.use_dora.get(a) or a in getattr(layer, "lora_variant", {}):
            raise NotImplementedError(f"{prefix.rstrip('.')}: adapter {a!r} is a LoRA variant (e.g. DoRA) that weight "
                                      "sync does not merge; use plain LoRA")
        if layer.lora_bias.get(a):
            raise NotImplementedError(f"{prefix.rstrip('.')}: adapter {a!r} has lora_bias=True, which weight sync "
                                      "does not merge; use lora_bias=False")
    params = list(base.parameters(recurse=False))
    for a in adapters:
        params += [layer.lora_A[a].weight, layer.lora_B[a].weight]

    def merged() -> Any:
        w = base.weight.data
        if not adapters:
            return w
        out = w.float()
        for a in adapters:
            delta = layer.lora_B[a].weight.data.float() @ layer.lora_A[a].weight.data.float()  # type: ignore[operator]
            if layer.fan_in_fan_out:
                delta = delta.T
            out = out + delta * float(layer.scaling[a])
        return out.to(dtype=w.dtype)

    tensors: list[tuple[str, Callable[[], Any], Any]] = [(f"{prefix}weight", merged, base.weight)]
    if getattr(base, "bias", None) is not None:
        tensors.append((f"{prefix}bias", lambda: base.bias.data, base.bias))
    return _Unit(params, tensors)


def _units(module: Any, prefix: str, seen: set[int]) -> Iterator[_Unit]:
    """Walk `module`: one unit per module with parameters of its own, LoRA layers and modules_to_save wrappers
    as wholes."""
    from_peft = _peft_classes()
    if from_peft is not None and isinstance(module, from_peft[0]):  # a LoRA layer
        unit = _lora_unit(module, prefix)
        unit.tensors = [t for t in unit.tensors if id(t[2]) not in seen]
        seen.update(id(t[2]) for t in unit.tensors)
        if unit.tensors:
            yield unit
        return
    if from_peft is not None and isinstance(module, from_peft[1]):  # modules_to_save: push the trained copy
        active = [] if module.disable_adapters else list(module.active_adapters)  # type: ignore[attr-defined]
        saved: Any = module.modules_to_save  # type: ignore[attr-defined]
        inner = saved[active[0]] if active and active[0] in saved else module.original_module  # type: ignore[attr-defined]
        yield from _units(inner, prefix, seen)
        return
    own = [(n, p) for n, p in module.named_parameters(recurse=False) if id(p) not in seen]
    if own:
        seen.update(id(p) for _, p in own)
        yield _Unit([p for _, p in own], [(f"{prefix}{n}", (lambda p=p: p.data), p) for n, p in own])  # type: ignore[misc]
    for child_name, child in module.named_children():
        yield from _units(child, f"{prefix}{child_name}.", seen)


def _peft_classes() -> tuple[type, type] | None:
    try:
        from peft.tuners.lora import LoraLayer
        from peft.utils import ModulesToSaveWrapper
    except ImportError:
        return None
    return LoraLayer, ModulesToSaveWrapper


def _plan(model: Any, accelerator: Any | None = None) -> Iterator[_Unit]:
    model = unwrap(model, accelerator)
    root = _peft_root(model)
    for unit in _units(root if root is not None else model, "", set()):
        unit.tensors = [(_checked_name(clean_name(n)), build, p) for n, build, p in unit.tensors]
        yield unit


def _checked_name(name: str) -> str:
    bad = [f for f in PEFT_FRAGMENTS if f in name]
    if bad:
        raise RuntimeError(f"weight sync would push {name!r}, which vLLM does not know ({bad[0]!r} is a PEFT name "
                           "fragment): this PEFT layer type is not supported by train.weight_sync")
    return name


def hf_weights(model: Any, *, accelerator: Any | None = None) -> Iterator[tuple[str, Any]]:
    """`(name, tensor)` of every parameter in Hugging Face checkpoint names, LoRA merged, ZeRO-3 gathered one
    module at a time (module docstring). A yielded tensor is valid until the next one is requested (its gathered
    buffer is released then): consume it (copy, load, broadcast) before asking for the next."""
    for unit in _plan(model, accelerator):
        with gathered(unit.gather):
            for name, build, _ in unit.tensors:
                yield name, build()


def weight_metadata(model: Any, *, accelerator: Any | None = None) -> list[tuple[str, str, list[int]]]:
    """`(name, dtype, shape)` of what `hf_weights` yields, in the same order, without gathering anything (dtype
    like "bfloat16"; full shapes also under ZeRO-3). What a vLLM server must be told before the broadcast."""
    return [(name, str(p.dtype).removeprefix("torch."), full_shape(p))
            for unit in _plan(model, accelerator) for name, _, p in unit.tensors]


def _walk_gathers(model: Any, accelerator: Any | None) -> None:
    """Take part in every ZeRO-3 gather of `hf_weights` without building or pushing anything."""
    for unit in _plan(model, accelerator):
        with gathered(unit.gather):
            pass


def _counted(stream: Iterable[tuple[str, Any]], counter: list[int]) -> Iterator[tuple[str, Any]]:
    for item in stream:
        counter[0] += 1
        yield item


def push_weights(model: Any, engine: Any, *, accelerator: Any | None = None) -> int:
    """Send the trainer's current weights to `engine` (module docstring); call on every rank after each optimizer
    step, between rollouts. Returns the number of tensors this process pushed (0 for a shared-weights engine and
    on the non-main ranks of a server engine)."""
    kind = getattr(engine, "weight_sync", "none")
    if kind == "none":
        return 0
    if kind == "shared":
        engine.weights_updated()
        return 0
    model = unwrap(model, accelerator)
    counter = [0]
    if kind == "per_rank":
        engine.update_weights(_counted(hf_weights(model), counter))
        return counter[0]
    if kind == "main_process":
        main = accelerator is None or bool(accelerator.is_main_process)
        if main:
            engine.update_weights(_counted(hf_weights(model), counter), metadata=weight_metadata(model))
        elif any(is_zero3(p) for p in model.parameters()):
            _walk_gathers(model, None)
        return counter[0]
    raise ValueError(f"engine {getattr(engine, 'name', type(engine).__name__)!r} has weight_sync={kind!r}; valid: "
                     "none, shared, per_rank, main_process")
