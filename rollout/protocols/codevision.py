"""CodeVision's format ("Thinking with Programming Vision", docs/methods.md): orientation-robust, multi-tool.

The paper trains Qwen2.5-VL / Qwen3-VL on trajectories where the model writes code that rotates, flips and crops
the input; its data-generation code and exact prompt are unreleased, so this is our rendering of that contract:
the image is `image` (more images: `image_1`, ...), code is a ```python block inside `<code>...</code>`, results come
back inside Qwen's `<tool_response>...</tool_response>` tokens with the produced images, and the answer is
`<answer>...</answer>`. Each reply starts with its reasoning inside `<think>...</think>`, which the released
format reward (`uvtr.py`) requires. Up to 12 turns (the paper's RL setting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout.protocols.base import Message, Protocol
from sandbox.result import ExecResult

SYSTEM = """You are a visual reasoning assistant that can write Python code to inspect images.
The input image is loaded as the PIL image {names}. The image may be rotated or mirrored, and the detail you need may
be tiny: fix the orientation (rotate, transpose), crop and enlarge regions, or enhance them, as needed.
Write code inside <code>```python ... ```</code>; variables persist between blocks; show results with show(img) or
plt.show(), and print what you measure. Results return inside <tool_response></tool_response>.
Start every reply with your reasoning inside <think>...</think>, then write one code block or the final answer.
When you are sure, give the final answer as <answer>...</answer>."""


@dataclass
class CodeVisionProtocol(Protocol):
    name: str = "codevision"
    think_tags: bool = True
    observation_max_chars: int = 2000
    max_turns_hint: int | None = 12

    def image_names(self, n: int) -> list[str]:
        return ["image"] + [f"image_{i}" for i in range(1, n)]

    def system_prompt(self, image_names: list[str]) -> str:
        return SYSTEM.format(names=", ".join(image_names))

    def observation_message(self, result: ExecResult, *, first_image_number: int, timeout_s: float,
                            max_chars: int | None = None, images_shown: int | None = None) -> Message:
        text = self.result_text(result, timeout_s=timeout_s, max_chars=max_chars)
        n = len(result.images) if images_shown is None else min(images_shown, len(result.images))
        parts: list[dict[str, Any]] = [{"type": "text", "text": "<tool_response>\n" + (f"{text}\n" if text else "")}]
        parts += [{"type": "image"} for _ in range(n)]
        if n < len(result.images):
            parts.append({"type": "text", "text": f"\n[{len(result.images) - n} more images not shown: image limit]"})
        if n == 0 and not text:
            parts.append({"type": "text", "text": "(no output)"})
        parts.append({"type": "text", "text": "\n</tool_response>"})
        return {"role": "user", "content": parts}
