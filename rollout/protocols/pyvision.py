"""PyVision's format (Zhao et al., 2025; docs/methods.md).

Input images are `image_clue_0`, `image_clue_1`, ... and are labelled in the prompt as
`<image_clue_i>[image]</image_clue_i>`. Code is `<code>` + a fenced python block + `</code>`; generation stops at
`</code>`. Results return as `<interpreter>Text Result: ... Image Result: ...</interpreter>` with produced images
labelled `<image_clue_k>` continuing the numbering; errors as `<interpreter>{error}</interpreter>`. The answer is
`\\boxed{...}` on its own line between `<answer>` and `</answer>`, the layout PyVision asks for and
PyVision-RL's released verifier (`multi_task_verifier.py`) requires. Text output is cut at 400 characters, blocks time out after 20 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout.protocols.base import Message, Protocol
from sandbox.result import ExecResult, ExecStatus

SYSTEM = """You are an agent that solves visual questions by writing Python code.
The input images are already loaded as PIL images in the variables {names}. You may use Pillow, OpenCV (cv2),
NumPy, scikit-image and matplotlib to crop, rotate, flip, enhance, measure or mark the images.
To run code, write it between <code> and </code> inside a ```python block:
<code>
```python
crop = image_clue_0.crop((x1, y1, x2, y2))
plt.imshow(crop); plt.show()
```
</code>
The interpreter keeps variables between blocks. Printed text and the images you show (plt.show(), image.show() or
show(image)) are returned to you inside <interpreter>...</interpreter>. Think step by step, use code when it helps,
and give the final answer in this layout:
<answer>
\\boxed{{answer}}
</answer>"""


@dataclass
class PyVisionProtocol(Protocol):
    name: str = "pyvision"
    boxed_answer: bool = True
    answer_padding: str = "\n"
    observation_max_chars: int = 400
    default_timeout_s: float = 20.0

    def system_prompt(self, image_names: list[str]) -> str:
        return SYSTEM.format(names=", ".join(image_names))

    def user_content(self, question: str, image_names: list[str], image_sizes: list[tuple[int, int]]) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for name in image_names:
            parts += [{"type": "text", "text": f"<{name}>"}, {"type": "image"}, {"type": "text", "text": f"</{name}>\n\n"}]
        sizes = "\n".join(f"width of {n}: {w}, height of {n}: {h}" for n, (w, h) in zip(image_names, image_sizes, strict=True))
        parts.append({"type": "text", "text": f"{sizes}\n{question}"})
        return parts

    def observation_message(self, result: ExecResult, *, first_image_number: int, timeout_s: float,
                            max_chars: int | None = None, images_shown: int | None = None) -> Message:
        text = self.result_text(result, timeout_s=timeout_s, max_chars=max_chars)
        if result.status is not ExecStatus.OK and not result.images:
            return {"role": "user", "content": [{"type": "text", "text": f"<interpreter>{text}</interpreter>\n"}]}
        n = len(result.images) if images_shown is None else min(images_shown, len(result.images))
        parts: list[dict[str, Any]] = [{"type": "text", "text": f"<interpreter>\nText Result:\n{text or 'None'}\nImage Result:\n"}]
        if n == 0:
            parts.append({"type": "text", "text": "None"})
        for k in range(n):
            label = f"image_clue_{first_image_number + k}"
            parts += [{"type": "text", "text": f"<{label}>"}, {"type": "image"}, {"type": "text", "text": f"</{label}>"}]
        if n < len(result.images):
            parts.append({"type": "text", "text": f"\n({len(result.images) - n} more images not shown: image limit)"})
        parts.append({"type": "text", "text": "</interpreter>\n"})
        return {"role": "user", "content": parts}
