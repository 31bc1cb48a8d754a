"""Load the processor of a Qwen-VL checkpoint, with or without torchvision.

transformers' Qwen-VL processors bundle a video processor, and every video processor needs torchvision. On
machines with torchvision (GPU nodes: vLLM pins it) this is plain `AutoProcessor.from_pretrained`. Where there
is none (CPU machines: no CPU torchvision build exists for torch 2.13), we build the same processor class with
its video attribute removed: same tokenizer, same image processor (Pillow backend), same chat template, same
image-token expansion, so text and images are processed identically. Asking it for video is a clear error.

Real checkpoints and the offline tiny model go through this one function.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

VIDEO_UNSUPPORTED = (
    "this processor was loaded without a video processor because torchvision is not installed; "
    "install torchvision (GPU nodes) to process videos"
)


def _image_only(base: type) -> type:
    """Subclass `base` so that its sub-processors are only (image_processor, tokenizer).

    ProcessorMixin derives a processor's parts from its __init__ signature, so dropping `video_processor` from
    the signature makes saving/loading/validation ignore it; the parent's own __init__ still sets the token
    attributes (image_token, image_token_id, vision_start_token...).
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):  # noqa: ANN001, ANN003, ANN202, N807
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    def __call__(self, images=None, text=None, videos=None, **kwargs):  # noqa: ANN001, ANN003, ANN202, N807
        if videos is not None:
            raise NotImplementedError(VIDEO_UNSUPPORTED)
        return base.__call__(self, images=images, text=text, **kwargs)

    # Same class name as the base: ProcessorMixin saves `processor_class` from it, so a checkpoint saved from
    # here loads with the stock AutoProcessor wherever torchvision exists.
    return type(base.__name__, (base,), {"__init__": __init__, "__call__": __call__, "image_only": True,
                                         "__doc__": f"{base.__name__} without video support (no torchvision)."})


def _image_only_parts(model_type: str, path: str | Path) -> tuple[type, type]:
    """(processor class, Pillow image-processor class) that transformers maps `model_type` to."""
    from transformers.models.auto.image_processing_auto import (
        IMAGE_PROCESSOR_MAPPING_NAMES,
        get_image_processor_class_from_name,
    )
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES, processor_class_from_name

    pil_name = (IMAGE_PROCESSOR_MAPPING_NAMES.get(model_type) or {}).get("pil")
    proc_name = PROCESSOR_MAPPING_NAMES.get(model_type)
    if pil_name is None or proc_name is None:
        supported = sorted(k for k, v in IMAGE_PROCESSOR_MAPPING_NAMES.items() if (v or {}).get("pil") and "qwen" in k)
        raise ValueError(
            f"{path}: model_type {model_type!r} has no Pillow image processor in transformers, so it needs "
            f"torchvision (not installed). Loadable without torchvision: {', '.join(supported)}."
        )
    return processor_class_from_name(proc_name), get_image_processor_class_from_name(pil_name)


def load_processor(path: str | Path, *, min_pixels: int | None = None, max_pixels: int | None = None) -> Any:
    """The processor for the checkpoint at `path` (a local directory or hub id; offline runs need a directory).

    `min_pixels` / `max_pixels` override the image processor's resize bounds (Qwen's knobs for how many
    vision tokens an image becomes).
    """
    from transformers import AutoConfig, AutoProcessor, AutoTokenizer
    from transformers.utils import is_torchvision_available

    from train.model.paths import check_model_path

    check_model_path(str(path))

    size_kwargs: dict[str, Any] = {}
    if min_pixels is not None:
        size_kwargs["min_pixels"] = min_pixels
    if max_pixels is not None:
        size_kwargs["max_pixels"] = max_pixels
    if is_torchvision_available():
        return AutoProcessor.from_pretrained(path, **size_kwargs)

    processor_cls, image_processor_cls = _image_only_parts(AutoConfig.from_pretrained(path).model_type, path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    image_processor = image_processor_cls.from_pretrained(path, **size_kwargs)  # type: ignore[attr-defined]
    chat_template = tokenizer.chat_template
    template_file = Path(path) / "chat_template.jinja"
    if template_file.is_file():
        chat_template = template_file.read_text()
    processor = _image_only(processor_cls)(image_processor, tokenizer, chat_template=chat_template)
    logger.info("loaded %s for %s without a video processor (no torchvision)", type(processor).__name__, path)
    return processor
