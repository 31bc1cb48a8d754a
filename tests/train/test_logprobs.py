"""The chunked logprob pass against the full-vocabulary computation on the real tiny models (both architectures,
multi-turn with two images): equal logprobs, entropies and gradients; zeros off the mask; LoRA; DDP; generation
unchanged after the forward is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rollout.expand import trainer_inputs
from rollout.render import ChatRenderer
from train.config.model import LoraConfig, ModelConfig
from train.logprobs import FORWARD_KEYS, chunked_logprobs, install_logprob_forward, token_logprobs
from train.model.loading import load_model
from train.model.tiny import ARCHS, build_tiny_model

TEMPERATURE = 0.7
CONVERSATION = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Read the sign."}]},
    {"role": "assistant", "content": [{"type": "text", "text": "<code>\nshow(image_clue_0.rotate(180))\n</code>"}]},
    {"role": "user", "content": [{"type": "text", "text": "Image Result:"}, {"type": "image"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "It says <answer>STOP</answer>"}]},
]


@pytest.fixture(scope="module", params=ARCHS)
def tiny_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(request.param, tmp_path_factory.mktemp(request.param) / "model", seed=0)


def _load(path: Path, lora: LoraConfig | None = None) -> tuple[Any, Any]:
    model, proc = load_model(ModelConfig(name_or_path=str(path), dtype="float32", attn_implementation="eager",
                                         freeze_vision_tower=False, freeze_projector=False, lora=lora))
    model.eval()  # no dropout: the two computations must see the same network
    return model, proc


def _inputs(proc: Any) -> dict[str, Any]:
    rendered = ChatRenderer(proc).render_ids(CONVERSATION)
    rng = np.random.RandomState(0)
    images = [rng.randint(0, 255, (56, 84, 3), dtype=np.uint8), rng.randint(0, 255, (28, 56, 3), dtype=np.uint8)]
    inputs = trainer_inputs(rendered.token_ids, images, proc, loss_mask=rendered.assistant_mask)
    assert inputs["pixel_values"] is not None and int(inputs["loss_mask"].sum()) > 10
    return inputs


def _naive(model: Any, inputs: dict[str, Any], temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The full-vocabulary computation: (B, T, V) logits, fp32 log-softmax, gathered at the next token."""
    logits = model(**{k: inputs[k] for k in FORWARD_KEYS if k in inputs}).logits.float()
    logp = torch.log_softmax(logits[:, :-1] / temperature, dim=-1)
    picked = logp.gather(-1, inputs["input_ids"][:, 1:, None]).squeeze(-1)
    ent = -(logp.exp() * logp).sum(-1)
    zero = torch.zeros_like(picked[:, :1])
    return torch.cat([zero, picked], dim=1), torch.cat([zero, ent], dim=1)


def _objective(lp: torch.Tensor, ent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # a loss that weighs every position differently, so that a misplaced gradient cannot cancel out
    w = torch.linspace(-1.0, 2.0, lp.shape[1]).expand_as(lp)
    return (lp * w * mask).sum() + 0.3 * (ent * mask).sum()


def _grads(model: Any) -> dict[str, torch.Tensor]:
    out = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def test_chunked_logprobs_entropy_and_gradients_equal_the_full_vocabulary_computation(tiny_dir: Path) -> None:
    model, proc = _load(tiny_dir)
    inputs = _inputs(proc)
    mask = inputs["loss_mask"].float()
    lp, ent = token_logprobs(model, inputs, temperature=TEMPERATURE, loss_mask=inputs["loss_mask"], chunk_size=7,
                             with_entropy=True)
    assert lp.shape == ent.shape == inputs["input_ids"].shape and lp.dtype == torch.float32
    _objective(lp, ent, mask).backward()
    chunked = _grads(model)
    ref_lp, ref_ent = _naive(model, inputs, TEMPERATURE)
    _objective(ref_lp, ref_ent, mask).backward()
    naive = _grads(model)
    on = inputs["loss_mask"].bool()
    torch.testing.assert_close(lp[on], ref_lp[on], atol=1e-5, rtol=0)
    torch.testing.assert_close(ent[on], ref_ent[on], atol=1e-5, rtol=0)
    assert torch.all(lp[~on] == 0) and torch.all(ent[~on] == 0)
    assert set(chunked) == set(naive) and any("lm_head" in n or "embed_tokens" in n for n in chunked)
    assert any(n.startswith("model.visual.") for n in chunked)  # the images are in the graph
    for name, g in naive.items():
        torch.testing.assert_close(chunked[name], g, atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def test_all_positions_without_a_mask_and_the_greedy_temperature(tiny_dir: Path) -> None:
    model, proc = _load(tiny_dir)
    inputs = _inputs(proc)
    with torch.no_grad():
        lp = token_logprobs(model, inputs, temperature=0.0)  # greedy: logprobs at temperature 1
        ref, _ = _naive(model, inputs, 1.0)
    assert lp[0, 0].item() == 0.0
    torch.testing.assert_close(lp, ref, atol=1e-5, rtol=0)


def test_padded_batch_equals_each_sequence_alone(tiny_dir: Path) -> None:
    model, proc = _load(tiny_dir)
    tok = proc.tokenizer
    a = tok.encode("<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\nsure thing, here it is")
    b = tok.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nok")
    pad = tok.pad_token_id
    ids = torch.tensor([a, b + [pad] * (len(a) - len(b))])
    attn = torch.tensor([[1] * len(a), [1] * len(b) + [0] * (len(a) - len(b))])
    with torch.no_grad():
        batch = token_logprobs(model, {"input_ids": ids, "attention_mask": attn}, chunk_size=5)
        alone = [token_logprobs(model, {"input_ids": torch.tensor([s]), "attention_mask": torch.ones(1, len(s),
                                                                                                        dtype=torch.long)})
                 for s in (a, b)]
    torch.testing.assert_close(batch[0], alone[0][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch[1, : len(b)], alone[1][0], atol=1e-5, rtol=0)
    assert torch.all(batch[1, len(b):] == 0)


def test_lora_model_logprobs_and_adapter_gradients(tiny_dir: Path) -> None:
    model, proc = _load(tiny_dir, lora=LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    assert type(model).__name__.startswith("Peft")
    # non-zero adapters, so that the LoRA path changes the logprobs
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    inputs = _inputs(proc)
    mask = inputs["loss_mask"].float()
    lp, ent = token_logprobs(model, inputs, temperature=TEMPERATURE, loss_mask=inputs["loss_mask"], chunk_size=16,
                             with_entropy=True)
    _objective(lp, ent, mask).backward()
    chunked = _grads(model)
    ref_lp, ref_ent = _naive(model, inputs, TEMPERATURE)
    _objective(ref_lp, ref_ent, mask).backward()
    naive = _grads(model)
    on = inputs["loss_mask"].bool()
    torch.testing.assert_close(lp[on], ref_lp[on], atol=1e-5, rtol=0)
    # the adapters and the (unfrozen) vision tower train; the language model's own weights and lm_head do not
    assert any("lora_" in n for n in chunked)
    assert all("lora_" in n or ".visual." in n for n in chunked)
    for name, g in naive.items():
        torch.testing.assert_close(chunked[name], g, atol=1e-5, rtol=1e-4)
    with model.disable_adapter(), torch.no_grad():  # the reference policy of a LoRA run: the base model
        base = token_logprobs(model, inputs, temperature=TEMPERATURE, loss_mask=inputs["loss_mask"])
    assert (base[on] - lp[on]).abs().max().item() > 1e-3


def test_generation_is_unchanged_by_the_installed_forward(tiny_dir: Path) -> None:
    model, proc = _load(tiny_dir)
    ids = torch.tensor([proc.tokenizer.encode("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")])
    kw = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": proc.tokenizer.pad_token_id}
    before = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw)
    install_logprob_forward(model)
    install_logprob_forward(model)  # idempotent
    after = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw)
    assert torch.equal(before, after)


def test_ddp_wrapper_goes_through_the_top_level_call(tiny_dir: Path, tmp_path: Path) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model, proc = _load(tiny_dir)
    inputs = _inputs(proc)
    mask = inputs["loss_mask"]
    lp = token_logprobs(model, inputs, loss_mask=mask, chunk_size=9)
    (lp * mask).sum().backward()
    plain = _grads(model)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = DistributedDataParallel(model)
        lp_ddp = token_logprobs(ddp, inputs, loss_mask=mask, chunk_size=9)
        (lp_ddp * mask).sum().backward()  # DDP's reducer expects every parameter's gradient: it gets them
        wrapped = _grads(model)
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(lp_ddp, lp, atol=0, rtol=0)
    assert set(wrapped) == set(plain)
    for name, g in plain.items():
        torch.testing.assert_close(wrapped[name], g, atol=1e-6, rtol=1e-5)


def test_bad_arguments_are_clear_errors(tiny_dir: Path) -> None:
    model, proc = _load(tiny_dir)
    inputs = _inputs(proc)
    with pytest.raises(ValueError, match="chunk_size"):
        token_logprobs(model, inputs, chunk_size=0)
    with pytest.raises(ValueError, match="loss_mask has shape"):
        token_logprobs(model, inputs, loss_mask=inputs["loss_mask"][:, :-1])
    with pytest.raises(TypeError, match="no transformers model"):
        token_logprobs(torch.nn.Linear(2, 2), inputs)


def _naive_rows(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    logp = torch.log_softmax(torch.nn.functional.linear(hidden, weight, bias).float() / temperature, dim=-1)
    return logp.gather(1, targets[:, None]).squeeze(1), -(logp.exp() * logp).sum(-1)


@pytest.mark.parametrize("objective", ["both", "logprobs", "entropy"])
def test_chunked_rows_with_bias_temperature_and_a_ragged_last_chunk(objective: str) -> None:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(23, 16, generator=g, dtype=torch.float64)
    weight = torch.randn(50, 16, generator=g, dtype=torch.float64)
    bias = torch.randn(50, generator=g, dtype=torch.float64)
    targets = torch.randint(0, 50, (23,), generator=g)
    coef = torch.randn(23, generator=g, dtype=torch.float64)
    grads = []
    for fn in ("chunked", "naive"):
        leaves = [x.clone().requires_grad_(True) for x in (hidden, weight, bias)]
        if fn == "chunked":
            lp, ent = chunked_logprobs(*leaves, targets, temperature=1.3, chunk_size=5, with_entropy=True)
        else:
            lp, ent = _naive_rows(*leaves, targets, 1.3)
        loss = {"both": (lp * coef).sum() + (ent * coef.flip(0)).sum(), "logprobs": (lp * coef).sum(),
                "entropy": (ent * coef).sum()}[objective]
        loss.backward()
        grads.append((lp.detach(), ent.detach(), [x.grad for x in leaves]))
    (lp_c, ent_c, g_c), (lp_n, ent_n, g_n) = grads
    # both compute the log-softmax in fp32 (as the engines do); entropy is summed in another order: 1e-5
    torch.testing.assert_close(lp_c, lp_n, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent_c, ent_n, atol=1e-5, rtol=0)
    for a, b in zip(g_c, g_n, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_chunked_rows_in_bfloat16_and_under_autocast_match_the_same_precision_computation() -> None:
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(19, 32, generator=g)
    weight = torch.randn(64, 32, generator=g) / 4
    targets = torch.randint(0, 64, (19,), generator=g)
    # bf16 weights: logits in bf16, upcast to fp32 (what the full computation with a bf16 model does)
    lp, _ = chunked_logprobs(hidden.bfloat16(), weight.bfloat16(), None, targets, chunk_size=4)
    ref, _ = _naive_rows(hidden.bfloat16(), weight.bfloat16(), None, targets, 1.0)
    torch.testing.assert_close(lp, ref, atol=1e-5, rtol=0)
    w = weight.bfloat16().requires_grad_(True)
    chunked_logprobs(hidden.bfloat16(), w, None, targets, chunk_size=4)[0].sum().backward()
    assert w.grad is not None and w.grad.dtype == torch.bfloat16
    w_ref = weight.bfloat16().requires_grad_(True)
    _naive_rows(hidden.bfloat16(), w_ref, None, targets, 1.0)[0].sum().backward()
    torch.testing.assert_close(w.grad.float(), w_ref.grad.float(), atol=2e-2, rtol=2e-2)
    # fp32 weights under bf16 autocast: the projection runs in bf16 like the head module would
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lp_auto, _ = chunked_logprobs(hidden, weight, None, targets, chunk_size=4)
        ref_auto = torch.log_softmax(torch.nn.functional.linear(hidden, weight).float(), -1)
    torch.testing.assert_close(lp_auto, ref_auto.gather(1, targets[:, None]).squeeze(1), atol=1e-5, rtol=0)
