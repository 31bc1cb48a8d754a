"""The offline tiny Qwen-VL models: real classes, consistent token ids, train/generate/save through the real loader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from train.config.model import LoraConfig, ModelConfig
from train.model.loading import PROJECTOR_PATTERN, VISION_PREFIX, load_model
from train.model.tiny import ARCHS, QWEN_SPECIAL_TOKENS, build_tiny_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    arch = request.param
    return arch, build_tiny_model(arch, tmp_path_factory.mktemp(arch) / "model", seed=0)


def _load(path: Path, **kw: object):
    cfg = ModelConfig(name_or_path=str(path), dtype="float32", attn_implementation="eager",
                      freeze_vision_tower=False, freeze_projector=False, **kw)
    return load_model(cfg)


def _images() -> list[Image.Image]:
    rng = np.random.RandomState(0)
    return [Image.fromarray(rng.randint(0, 255, (90, 130, 3), dtype=np.uint8)),
            Image.fromarray(rng.randint(0, 255, (64, 64, 3), dtype=np.uint8))]


TWO_TURNS = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Read the sign."}]},
    {"role": "assistant", "content": [{"type": "text", "text": "<code>\nshow(image_clue_0.rotate(180))\n</code>"}]},
    {"role": "user", "content": [{"type": "text", "text": "Image Result:"}, {"type": "image"}]},
]


def test_architecture_classes_size_and_token_ids(tiny: tuple[str, Path]) -> None:
    arch, path = tiny
    model, processor = _load(path)
    expected = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "qwen3_vl": "Qwen3VLForConditionalGeneration"}
    assert type(model).__name__ == expected[arch]
    assert type(processor).__name__ == {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}[arch]
    n = sum(p.numel() for p in model.parameters())
    assert 100_000 < n < 1_000_000, n
    tok = processor.tokenizer
    cfg = model.config
    vocab = cfg.text_config.vocab_size
    ids = [tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS]
    assert len(set(ids)) == len(ids) and max(ids) < vocab and len(tok) <= vocab
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    rope = cfg.text_config.rope_parameters
    head_dim = getattr(cfg.text_config, "head_dim", None) or cfg.text_config.hidden_size // cfg.text_config.num_attention_heads
    assert sum(rope["mrope_section"]) == head_dim // 2
    # special tokens are single tokens, never split by BPE
    assert tok.encode("<|im_start|>assistant\n<|image_pad|>", add_special_tokens=False)[0] == ids[1]


def test_forward_loss_and_backward(tiny: tuple[str, Path]) -> None:
    _, path = tiny
    model, processor = _load(path)
    text = processor.apply_chat_template(TWO_TURNS, tokenize=False, add_generation_prompt=True)
    batch = processor(text=[text], images=_images(), return_tensors="pt")
    n_img_tokens = int((batch["input_ids"] == model.config.image_token_id).sum())
    merge = processor.image_processor.merge_size ** 2
    assert n_img_tokens == int(batch["image_grid_thw"].prod(dim=1).sum()) // merge
    out = model(**batch, labels=batch["input_ids"])
    assert torch.isfinite(out.loss) and out.loss.item() > 0
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert any(n.startswith(VISION_PREFIX) and g.abs().sum() > 0 for n, g in grads.items()), "no gradient reached vision"
    assert any("language_model" in n and g.abs().sum() > 0 for n, g in grads.items())


def test_generate_with_two_images_in_two_turns(tiny: tuple[str, Path]) -> None:
    _, path = tiny
    model, processor = _load(path)
    image_token = model.config.image_token_id
    text = processor.apply_chat_template(TWO_TURNS, tokenize=False, add_generation_prompt=True)
    assert text.count("<|image_pad|>") == 2
    batch = processor(text=[text], images=_images(), return_tensors="pt")
    torch.manual_seed(0)
    gen = model.generate(**batch, max_new_tokens=12, do_sample=True, temperature=1.0,
                         suppress_tokens=[image_token], eos_token_id=None)
    new = gen[0, batch["input_ids"].shape[1]:]
    assert new.numel() == 12
    assert image_token not in new.tolist()


def test_save_reload_identity(tiny: tuple[str, Path], tmp_path: Path) -> None:
    _, path = tiny
    model, processor = _load(path)
    model.eval()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    again, processor2 = _load(tmp_path)
    again.eval()
    sd1, sd2 = model.state_dict(), again.state_dict()
    assert sd1.keys() == sd2.keys()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    text = processor.apply_chat_template(TWO_TURNS, tokenize=False, add_generation_prompt=True)
    assert text == processor2.apply_chat_template(TWO_TURNS, tokenize=False, add_generation_prompt=True)
    b1 = processor(text=[text], images=_images(), return_tensors="pt")
    b2 = processor2(text=[text], images=_images(), return_tensors="pt")
    assert torch.equal(b1["input_ids"], b2["input_ids"]) and torch.equal(b1["pixel_values"], b2["pixel_values"])
    with torch.no_grad():
        assert torch.equal(model(**b1).logits, again(**b2).logits)


def test_build_is_deterministic(tmp_path: Path) -> None:
    a = build_tiny_model("qwen2_5_vl", tmp_path / "a", seed=3)
    b = build_tiny_model("qwen2_5_vl", tmp_path / "b", seed=3)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_unknown_arch_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid: qwen2_5_vl, qwen3_vl"):
        build_tiny_model("llava", tmp_path)  # type: ignore[arg-type]


def test_freezing_and_lora(tiny: tuple[str, Path]) -> None:
    _, path = tiny
    cfg = ModelConfig(name_or_path=str(path), dtype="float32", freeze_vision_tower=True, freeze_projector=False)
    model, _ = load_model(cfg)
    for name, p in model.named_parameters():
        if name.startswith(VISION_PREFIX):
            assert p.requires_grad == bool(PROJECTOR_PATTERN.match(name)), name
        else:
            assert p.requires_grad, name
    lora_model, _ = _load(path, lora=LoraConfig(r=4, alpha=8))
    trainable = [n for n, p in lora_model.named_parameters() if p.requires_grad]
    # LoRA adapts only language-model projections; with the vision parts unfrozen in the config they train too
    assert trainable and all("lora_" in n or ".visual." in n for n in trainable)
    assert any("language_model" in n and "lora_A" in n for n in trainable)
    assert not any(".visual." in n and "lora_" in n for n in trainable)


def test_cli_help_lists_subcommands_and_tiny_model_command(tmp_path: Path) -> None:
    codevl = Path(sys.executable).with_name("codevl")
    assert codevl.exists(), "console script `codevl` is not installed in this environment"
    out = subprocess.run([str(codevl), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for name in ("demo", "tiny-model", "config"):
        assert name in out.stdout
    out = subprocess.run([str(codevl), "tiny-model", "--arch", "qwen3_vl", "--out", str(tmp_path / "m")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "Qwen3VLForConditionalGeneration" in out.stdout and (tmp_path / "m" / "model.safetensors").exists()
