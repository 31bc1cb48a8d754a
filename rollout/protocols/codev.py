"""CodeV's format (Hou et al., 2025; docs/methods.md): `<code>`, `<sandbox_output>`, `<answer>`; up to 10 turns.

The input image is `image_clue_0` (and further `image_clue_i`), code is written inside `<code>...</code>` in a
```python fence, results come back as `<sandbox_output>...</sandbox_output>` with the images shown in order, and the
answer is `<answer>...</answer>`. CodeV's exact released system prompt is not public in full; this is our wording of
the same contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout.protocols.base import Message, Protocol
from sandbox.result import ExecResult

SYSTEM = """You answer questions about images by reasoning and, when useful, by running Python code.
The images are available as PIL images named {names}. Useful libraries: PIL, cv2, numpy, skimage, matplotlib.
Put code inside <code>```python ... ```</code>; it runs in a sandbox that keeps variables between blocks, and what it
prints and shows (show(img), plt.show()) comes back inside <sandbox_output></sandbox_output>. Crop and zoom into the
region that holds the evidence before answering. End with <answer>your answer</answer>."""


@dataclass
class CodeVProtocol(Protocol):
    name: str = "codev"
    observation_max_chars: int = 2000
    max_turns_hint: int | None = 10

    def system_prompt(self, image_names: list[str]) -> str:
        return SYSTEM.format(names=", ".join(image_names))

    def observation_message(self, result: ExecResult, *, first_image_number: int, timeout_s: float,
                            max_chars: int | None = None, images_shown: int | None = None) -> Message:
        text = self.result_text(result, timeout_s=timeout_s, max_chars=max_chars)
        n = len(result.images) if images_shown is None else min(images_shown, len(result.images))
        parts: list[dict[str, Any]] = [{"type": "text", "text": f"<sandbox_output>\n{text}\n" if text else "<sandbox_output>\n"}]
        parts += [{"type": "image"} for _ in range(n)]
        if n < len(result.images):
            parts.append({"type": "text", "text": f"\n[{len(result.images) - n} more images not shown: image limit]"})
        parts.append({"type": "text", "text": "</sandbox_output>"})
        return {"role": "user", "content": parts}
