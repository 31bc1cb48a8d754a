"""Build a tiny, randomly initialised Qwen-VL model offline: real architecture, local tokenizer and processor.

    codevl tiny-model --arch qwen2_5_vl --out runs/tiny-qwen2_5_vl
    codevl tiny-model --arch qwen3_vl --out runs/tiny-qwen3_vl

Nothing can be downloaded here, yet tests and the demo must exercise the exact code paths of a real run. So this
module builds, from scratch and deterministically by seed:

- a byte-level BPE tokenizer trained on a small in-code corpus, with Qwen's pre-tokenizer and Qwen's special
  tokens (`<|im_start|>`, `<|image_pad|>`, ...) at the end of the vocabulary, so every id fits the tiny embedding;
- a config of the real class (`Qwen2_5_VLConfig` / `Qwen3VLConfig`) scaled down to a few hundred thousand
  parameters, with the image/video/vision-start token ids pointing at that tokenizer's special tokens and the
  multimodal rope sections summing to head_dim / 2;
- the model through `AutoModelForImageTextToText.from_config` (the same class a real checkpoint loads into);
- the real processor class with the Pillow image processor (no torchvision needed) and a Qwen chat template;

and saves all of it in Hugging Face format. Loading goes through `train.model.loading`, which is also what loads
real checkpoints: nothing downstream special-cases the tiny model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Literal

from train.model.chat_templates import CHAT_TEMPLATES

Arch = Literal["qwen2_5_vl", "qwen3_vl"]
ARCHS: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl")

# Qwen's special tokens, in Qwen's order. The first 14 are "special" (skipped when decoding with
# skip_special_tokens); the rest are added tokens that decode as text, as in the real tokenizers.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
QWEN_ADDED_TOKENS: tuple[str, ...] = (
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
)

# Qwen's pre-tokenisation regex (split before byte-level mapping), as in transformers' Qwen2 tokenizer.
QWEN_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

BPE_VOCAB_SIZE = 1000  # byte alphabet (256) + merges; special tokens come after
IMAGE_MAX_PIXELS = 112 * 112  # tiny images keep vision sequences short on CPU (<= 16 merged tokens for Qwen2.5)
IMAGE_MIN_PIXELS = 28 * 28


def training_corpus(seed: int = 0, n_lines: int = 3000) -> list[str]:
    """A small deterministic corpus resembling what the model will read and write: prose, tags, Python."""
    rng = random.Random(seed)
    words = (
        "the a image crop rotate flip zoom text read what is color shape number count answer question left right "
        "top bottom region small large red green blue yellow black white circle square triangle line object "
        "first then so because it this that which where see find look upside down mirrored sign label"
    ).split()
    code = [
        "from PIL import Image", "import numpy as np", "import cv2", "import matplotlib.pyplot as plt",
        "img = image_clue_0", "w, h = img.size", "crop = img.crop((x1, y1, x2, y2))",
        "rot = img.rotate(90, expand=True)", "flipped = img.transpose(Image.FLIP_LEFT_RIGHT)",
        "arr = np.array(img)", "print(arr.shape)", "plt.imshow(crop)", "plt.axis('off')", "plt.show()",
        "gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)", "big = crop.resize((w * 4, h * 4))", "show(crop)",
    ]
    tags = ["<code>", "</code>", "```python", "```", "<answer>", "</answer>", "\\boxed{", "}", "<interpreter>",
            "</interpreter>", "<sandbox_output>", "</sandbox_output>", "Text Result:", "Image Result:"]
    lines: list[str] = []
    for _ in range(n_lines):
        kind = rng.random()
        if kind < 0.4:
            lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))).capitalize() + ".")
        elif kind < 0.75:
            lines.append("\n".join(rng.sample(code, rng.randint(2, 6))))
        else:
            n = rng.randint(0, 2000)
            lines.append(f"{rng.choice(tags)} {rng.choice(words)} {n} ({n // 3}, {n % 97}) {rng.choice(tags)}")
    return lines


def build_tokenizer(seed: int = 0):  # noqa: ANN201 - transformers.Qwen2Tokenizer
    """Train a byte-level BPE in Qwen's style and wrap it as the real `Qwen2Tokenizer` class."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2Tokenizer

    raw = Tokenizer(models.BPE())
    raw.normalizer = normalizers.NFC()
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    raw.train_from_iterator(training_corpus(seed), trainer=trainer)
    model = json.loads(raw.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,  # type: ignore[arg-type]
        unk_token=None,  # type: ignore[arg-type]
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        errors="replace",
    )
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS]}
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_ADDED_TOKENS])
    return tok


def _padded_vocab(n: int, multiple: int = 64) -> int:
    return (n + multiple - 1) // multiple * multiple


def build_config(arch: Arch, tokenizer):  # noqa: ANN001, ANN201 - transformers config
    """A scaled-down config of the real class with token ids taken from `tokenizer`."""
    from transformers import Qwen2_5_VLConfig, Qwen3VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    vocab_size = _padded_vocab(len(tokenizer))
    hidden, heads, head_dim = 64, 4, 16
    mrope_section = [2, 3, 3]  # must sum to head_dim / 2
    assert sum(mrope_section) == head_dim // 2
    common_tokens = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    text = dict(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    if arch == "qwen2_5_vl":
        vision = dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14, spatial_merge_size=2,
            temporal_patch_size=2, window_size=56, out_hidden_size=hidden, fullatt_block_indexes=[1],
        )
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope_section}
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **common_tokens)
    if arch == "qwen3_vl":
        vision = dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
            temporal_patch_size=2, out_hidden_size=hidden, num_position_embeddings=64, deepstack_visual_indexes=[0],
        )
        text["head_dim"] = head_dim
        text["rope_parameters"] = {
            "rope_type": "default", "rope_theta": 5000000.0, "mrope_section": mrope_section,
            "mrope_interleaved": True,
        }
        return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **common_tokens)
    raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")


def build_processor(arch: Arch, tokenizer, patch_size: int):  # noqa: ANN001, ANN201
    """The real processor class for `arch`, with the Pillow image processor and no video processor."""
    from transformers import Qwen2_5_VLProcessor, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from train.model.processor import _image_only

    norm = (
        dict(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
        if arch == "qwen3_vl"
        else dict(image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711])
    )
    factor = patch_size * 2
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=patch_size, merge_size=2, temporal_patch_size=2,
        size={"shortest_edge": max(IMAGE_MIN_PIXELS, factor * factor), "longest_edge": IMAGE_MAX_PIXELS}, **norm,
    )
    cls = _image_only(Qwen2_5_VLProcessor if arch == "qwen2_5_vl" else Qwen3VLProcessor)
    return cls(image_processor, tokenizer, chat_template=CHAT_TEMPLATES[arch])


def build_tiny_model(arch: Arch, out: str | Path, seed: int = 0) -> Path:
    """Build and save the tiny model, tokenizer and processor for `arch` under `out`; returns the directory."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    import torch
    from transformers import AutoModelForImageTextToText

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(seed)
    tokenizer.chat_template = CHAT_TEMPLATES[arch]
    config = build_config(arch, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                            tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    processor = build_processor(arch, tokenizer, patch_size=config.vision_config.patch_size)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _declare_video_processor(out, arch, config.vision_config.patch_size)
    return out


def _declare_video_processor(out: Path, arch: Arch, patch_size: int) -> None:
    """Record the video processor a real checkpoint would carry, so that stock `AutoProcessor` (with
    torchvision) loads this directory too; it is never instantiated where torchvision is missing."""
    path = out / "processor_config.json"
    data = json.loads(path.read_text())
    data["video_processor"] = {
        "video_processor_type": "Qwen3VLVideoProcessor" if arch == "qwen3_vl" else "Qwen2VLVideoProcessor",
        "patch_size": patch_size,
        "temporal_patch_size": 2,
        "merge_size": 2,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def describe(path: str | Path) -> str:
    """A few lines about a saved model: class, parameter count, vocabulary, image token id."""
    from transformers import AutoConfig
    from safetensors import safe_open

    cfg = AutoConfig.from_pretrained(path)
    n_params = 0
    for shard in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(shard), framework="np") as f:
            for key in f.keys():
                n_params += int(np_prod(f.get_slice(key).get_shape()))
    text = cfg.text_config
    return (
        f"{path}: {cfg.architectures[0] if cfg.architectures else cfg.model_type} ({cfg.model_type}), "
        f"{n_params:,} parameters, vocab {text.vocab_size}, hidden {text.hidden_size}, "
        f"layers {text.num_hidden_layers}, image_token_id {cfg.image_token_id}"
    )


def np_prod(shape: list[int]) -> int:
    """Product of a shape's dimensions."""
    out = 1
    for d in shape:
        out *= int(d)
    return out
