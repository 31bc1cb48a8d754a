"""Per-token logprobs of a sequence under the policy, computed only where the loss needs them and in chunks.

Entry t of the result is log p(input_ids[t] | input_ids[:t]) under `log_softmax(logits / temperature)` over the
full vocabulary: exactly what the engines report for sampled tokens (`rollout.engines.hf`, vLLM with processed
logprobs), so the ratio between the two is the importance weight between rollout and trainer policies.

Memory. The obvious computation materialises `(batch, seq, vocab)` logits, their fp32 copy and the log-softmax:
for one 16k-token sequence at Qwen's 152k vocabulary that is 10 GB per fp32 copy, before the backward pass keeps
its own. Here the model's backbone runs as usual, then only the hidden states of the positions whose next token
carries loss go through the LM head, `chunk_size` rows at a time, inside a custom autograd function that keeps
nothing of a chunk but one log-normaliser per token and recomputes the chunk's logits in the backward pass. Peak
extra memory is a few `(chunk_size, vocab)` fp32 buffers, whatever the sequence length
(`scripts/bench/logprob_memory.py` measures it against the full computation).

Wrappers. The computation runs inside the model's own forward: `token_logprobs` installs (once, idempotently) a
forward on the underlying transformers model that takes one extra keyword, and then calls the object it was
given, `model(**inputs, ...)`. DDP, DeepSpeed engines and PEFT models pass keywords through to that forward, so
their hooks (gradient synchronisation, ZeRO-3 parameter gathering) see an ordinary forward call, and generation,
which never passes the keyword, runs the original forward unchanged. Under ZeRO-3 the LM head's weight is
gathered explicitly around the chunked projection, in the forward and again in the backward recomputation,
because it is read directly instead of through the head module's hooks. LoRA is supported on the language model's
layers; an adapted or wrapped LM head (LoRA or `modules_to_save` on `lm_head`) is refused with a clear error.
"""

from __future__ import annotations

import functools
import types
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

# The keys of `rollout.expand.trainer_inputs` that the Qwen-VL forward takes.
FORWARD_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
REQUEST_KWARG = "codevl_logprob_request"
_INSTALLED = "_codevl_logprob_forward"


def token_logprobs(model: Any, inputs: dict[str, Any], *, temperature: float = 1.0, loss_mask: Any | None = None,
                   chunk_size: int = 1024, with_entropy: bool = False) -> Any:
    """(batch, seq) float32 tensor: entry t is log p(input_ids[t] | input_ids[:t]) at the positions where
    `loss_mask` is 1 (every position with `attention_mask` 1 when `loss_mask` is None), 0 elsewhere; entry 0 is
    always 0. With `with_entropy`, returns `(logprobs, entropy)`, entropy t being that of the distribution that
    token t was drawn from, on the same positions. Both are differentiable.

    `inputs` holds `input_ids`, `attention_mask` and optionally `mm_token_type_ids`, `pixel_values`,
    `image_grid_thw` (`rollout.expand.trainer_inputs`; other keys are ignored), on any device: they are moved to
    the model's. `model` is a transformers Qwen-VL model, or any wrapper of one (PEFT, DDP, DeepSpeed). A
    `temperature` <= 0 (greedy) means 1. `chunk_size` bounds the rows projected through the LM head at once.
    """
    from train.model.placement import to_model

    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    install_logprob_forward(model)
    inputs = to_model(inputs, model)
    ids = inputs["input_ids"]
    if loss_mask is not None:
        positions = torch.as_tensor(loss_mask, device=ids.device).bool().clone()
    elif "attention_mask" in inputs:
        positions = inputs["attention_mask"].bool().clone()
    else:
        positions = torch.ones_like(ids, dtype=torch.bool)
    if positions.shape != ids.shape:
        raise ValueError(f"loss_mask has shape {tuple(positions.shape)} but input_ids has {tuple(ids.shape)}")
    positions[:, 0] = False  # nothing predicts the first token
    request = {"positions": positions, "temperature": float(temperature) if temperature > 0 else 1.0,
               "chunk_size": int(chunk_size), "with_entropy": bool(with_entropy)}
    fwd = {k: inputs[k] for k in FORWARD_KEYS if k in inputs}
    out = model(**fwd, **{REQUEST_KWARG: request})
    return (out["logprobs"], out["entropy"]) if with_entropy else out["logprobs"]


def unwrap_model(model: Any) -> Any:
    """The transformers model inside DDP / DeepSpeed / accelerate / torch.compile / PEFT wrappers."""
    from transformers import PreTrainedModel

    m = model
    for _ in range(10):
        if isinstance(m, PreTrainedModel):
            return m
        if hasattr(m, "get_base_model"):  # PEFT
            m = m.get_base_model()
        elif hasattr(m, "module"):  # DDP, DeepSpeedEngine
            m = m.module
        elif hasattr(m, "_orig_mod"):  # torch.compile
            m = m._orig_mod
        else:
            break
    raise TypeError(f"found no transformers model inside {type(model).__name__}; token_logprobs takes a Qwen-VL "
                    "model (AutoModelForImageTextToText) or a PEFT / DDP / DeepSpeed wrapper of one")


def install_logprob_forward(model: Any) -> Any:
    """Give the transformers model inside `model` a forward that, when called with the keyword `REQUEST_KWARG`,
    returns `{"logprobs", "entropy"}` computed in chunks instead of logits; without it, the original forward runs.
    Idempotent; returns the transformers model."""
    hf = unwrap_model(model)
    if getattr(hf, _INSTALLED, False):
        return hf
    original = hf.forward

    @functools.wraps(type(hf).forward)  # keeps the signature that `generate` validates its kwargs against
    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = kwargs.pop(REQUEST_KWARG, None)
        if request is None:
            return original(*args, **kwargs)
        if args:
            raise TypeError("the chunked logprob forward takes its inputs by keyword (input_ids=..., ...)")
        return _logprob_forward(self, request, kwargs)

    hf.forward = types.MethodType(forward, hf)
    setattr(hf, _INSTALLED, True)
    return hf


def _logprob_forward(hf: Any, request: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    input_ids = kwargs.get("input_ids")
    if input_ids is None:
        raise ValueError("token_logprobs needs input_ids (the targets are read from them)")
    # PEFT passes labels/output_* as None; logits_to_keep belongs to the head we replace
    kw = {k: v for k, v in kwargs.items() if v is not None and k not in ("labels", "logits_to_keep")}
    kw["use_cache"] = False
    hidden = hf.base_model(**kw)[0]  # (B, T, H): the backbone's final, normalised hidden states
    head = hf.get_output_embeddings()
    if type(head) is not torch.nn.Linear:
        raise TypeError(f"the LM head is a {type(head).__name__}, not a plain torch.nn.Linear (LoRA or "
                        "modules_to_save on lm_head?); the chunked logprob pass reads its weight directly: leave "
                        "lm_head out of the adapter's target modules")
    text_config = hf.config.get_text_config()
    if getattr(text_config, "final_logit_softcapping", None) is not None:
        raise ValueError("models with final_logit_softcapping are not supported by the chunked logprob pass")
    positions = request["positions"].to(hidden.device)
    select = positions[:, 1:]  # hidden state t - 1 predicts token t
    h = hidden[:, :-1][select]
    targets = input_ids[:, 1:].to(hidden.device)[select]
    logp, ent = chunked_logprobs(h, head.weight, head.bias, targets, temperature=request["temperature"],
                                 chunk_size=request["chunk_size"], with_entropy=request["with_entropy"])
    # masked_scatter keeps the result attached to the graph even when no position is selected
    out_lp = torch.zeros(positions.shape, dtype=torch.float32, device=hidden.device).masked_scatter(positions, logp)
    out_ent = None
    if ent is not None:
        out_ent = torch.zeros(positions.shape, dtype=torch.float32, device=hidden.device).masked_scatter(positions, ent)
    return {"logprobs": out_lp, "entropy": out_ent}


def chunked_logprobs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor, *,
                     temperature: float = 1.0, chunk_size: int = 1024,
                     with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Float32 logprobs (N,) of `targets` (N,) under log_softmax((hidden @ weight.T + bias) / temperature), and the
    entropies (N,) when `with_entropy` (else None), for hidden states `hidden` (N, H) and an LM head `weight`
    (V, H): the building block of `token_logprobs`, differentiable with respect to hidden, weight and bias, never
    holding more than `chunk_size` rows of logits. ZeRO-3-partitioned weights are gathered around the reads."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    with _gathered(weight, bias):
        return _ChunkedLogprobs.apply(hidden, weight, bias, targets, float(temperature), int(chunk_size),
                                      bool(with_entropy))


def _gathered(*params: torch.Tensor | None) -> AbstractContextManager[Any]:
    """Gather ZeRO-3-partitioned parameters for a direct read (a no-op for ordinary tensors, or when already
    gathered, e.g. a head tied to the embeddings inside the embedding's forward)."""
    live = {id(p): p for p in params if p is not None and hasattr(p, "ds_id")}
    if not live:
        return nullcontext()
    import deepspeed
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    todo = [p for p in live.values() if p.ds_status != ZeroParamStatus.AVAILABLE]  # type: ignore[attr-defined]
    return deepspeed.zero.GatheredParameters(todo) if todo else nullcontext()


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else t.dtype


class _ChunkedLogprobs(torch.autograd.Function):
    """logp_n = z_n[y_n] - logsumexp(z_n), entropy_n = logsumexp(z_n) - sum_v softmax(z_n)_v z_nv, with
    z_n = (h_n W^T + b) / temperature in fp32, computed `chunk` rows at a time. Saved for backward: the inputs plus
    logsumexp (and entropy) per row. Backward recomputes each chunk's z and uses

        d logp / d z = onehot(y) - p,        d entropy / d z = -p * (log p + entropy),

    then d/dh = (dz / temperature) W and d/dW = sum_n (dz_n / temperature)^T h_n (accumulated in fp32)."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                temperature: float, chunk: int, with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        ctx.set_materialize_grads(False)
        cdtype = _compute_dtype(hidden)
        n = hidden.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=hidden.device)
        lse = torch.empty_like(logp)
        ent = torch.empty_like(logp) if with_entropy else None
        with torch.autocast(hidden.device.type, enabled=False):
            w = weight.to(cdtype)
            b = None if bias is None else bias.to(cdtype)
            for s in range(0, n, chunk):
                e = min(s + chunk, n)
                z = torch.nn.functional.linear(hidden[s:e].to(cdtype), w, b).float()
                if temperature != 1.0:
                    z.div_(temperature)
                lse[s:e] = torch.logsumexp(z, dim=-1)
                logp[s:e] = z.gather(1, targets[s:e, None]).squeeze(1) - lse[s:e]
                if ent is not None:  # H = lse - sum_v p_v z_v, with one more (chunk, V) buffer at most
                    p = (z - lse[s:e, None]).exp_()
                    ent[s:e] = lse[s:e] - p.mul_(z).sum(-1)
                    del p
                del z
        ctx.save_for_backward(hidden, weight, bias, targets, lse, lse if ent is None else ent)
        ctx.temperature, ctx.chunk, ctx.cdtype, ctx.with_entropy = temperature, chunk, cdtype, with_entropy
        if ent is None:
            return logp, None
        return logp, ent

    @staticmethod
    def backward(ctx: Any, g_logp: torch.Tensor | None, g_ent: torch.Tensor | None) -> tuple[Any, ...]:
        hidden, weight, bias, targets, lse, ent = ctx.saved_tensors
        if not ctx.with_entropy:
            g_ent = None
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        if (g_logp is None and g_ent is None) or not (need_h or need_w or need_b):
            return None, None, None, None, None, None, None
        t, chunk, cdtype = ctx.temperature, ctx.chunk, ctx.cdtype
        n = hidden.shape[0]
        with _gathered(weight, bias), torch.autocast(hidden.device.type, enabled=False):
            w = weight.to(cdtype)
            b = None if bias is None else bias.to(cdtype)
            grad_h = torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device) if need_h else None
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
            grad_b = torch.zeros(weight.shape[0], dtype=torch.float32, device=weight.device) if need_b else None
            for s in range(0, n, chunk):
                e = min(s + chunk, n)
                h = hidden[s:e].to(cdtype)
                gz = _logit_grad(torch.nn.functional.linear(h, w, b), t, lse[s:e], ent[s:e], targets[s:e],
                                 None if g_logp is None else g_logp[s:e], None if g_ent is None else g_ent[s:e])
                gz = gz.to(cdtype)
                if grad_h is not None:
                    grad_h[s:e] = (gz @ w).to(hidden.dtype)
                if grad_w is not None:
                    if gz.dtype == grad_w.dtype:
                        grad_w.addmm_(gz.t(), h)  # in place: no (V, H) temporary
                    else:
                        grad_w.add_(gz.t() @ h)
                if grad_b is not None:
                    grad_b.add_(gz.float().sum(0))
                del gz
        return (grad_h, None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(bias.dtype), None, None, None, None)


def _logit_grad(z: torch.Tensor, temperature: float, lse: torch.Tensor, ent: torch.Tensor, targets: torch.Tensor,
                g_logp: torch.Tensor | None, g_ent: torch.Tensor | None) -> torch.Tensor:
    """d(sum g_logp * logp + g_ent * H) / d(raw logits) for one chunk, computed in place in the fp32 copy of `z`
    with one more (chunk, V) buffer (a function of its own so that both buffers are freed before the next chunk)."""
    z = z.float()
    if temperature != 1.0:
        z.div_(temperature)
    logp_v = z.sub_(lse[:, None])  # log p over the vocabulary
    p = logp_v.exp()
    if g_ent is not None:
        # -p * (log p + H) * g_ent - p * g_logp  (+ g_logp on the target, below)
        grad = logp_v.add_(ent[:, None]).mul_(-g_ent[:, None])
        if g_logp is not None:
            grad.sub_(g_logp[:, None])
        grad.mul_(p)
    else:
        assert g_logp is not None
        grad = p.mul_(-g_logp[:, None])
    if g_logp is not None:
        grad[torch.arange(grad.shape[0], device=grad.device), targets] += g_logp.float()
    if temperature != 1.0:
        grad.div_(temperature)
    return grad
