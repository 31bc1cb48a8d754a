"""`Task`: one visual question with its ground truth (docs/architecture.md, "The data that flows" 1).

The type lives here, below `rewards` and `data` in the import direction, because all three need it: the episode
loop reads the question and images, rewards read the ground truth (answer, evidence boxes, required ops), and
`data` writes and reads task files (`data` owns the JSONL format, file:line validation, generators and loaders).
A trajectory embeds its task, so a saved run can be re-scored without the task file.

Image paths: in a JSONL file they are relative to the file; `data`'s reader resolves them, so a `Task` in memory
holds paths that open from the current working directory (absolute, normally).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

AnswerType = Literal["choice", "number", "text", "box"]
RequiredOp = Literal["rotate90", "rotate180", "rotate270", "flip_h", "flip_v", "crop"]
REQUIRED_OPS: tuple[str, ...] = ("rotate90", "rotate180", "rotate270", "flip_h", "flip_v", "crop")


class EvidenceBox(BaseModel):
    """Where the evidence is: `(x1, y1, x2, y2)` in original pixel coordinates of input image `image`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    box: tuple[float, float, float, float]
    image: int = Field(0, ge=0, description="index into Task.images")
    label: str | None = None

    @field_validator("box")
    @classmethod
    def _ordered(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = box
        if not (x2 > x1 and y2 > y1):
            raise ValueError(f"box {list(box)} must have x2 > x1 and y2 > y1 (x1, y1, x2, y2 in pixels)")
        if min(box) < 0:
            raise ValueError(f"box {list(box)} has a negative coordinate")
        return box

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return (x2 - x1) * (y2 - y1)


class Task(BaseModel):
    """One problem. `answer` is a string for choice (the option letter, e.g. "B") and text, a number for
    number, and `[x1, y1, x2, y2]` for box. `choices` lists the options' texts for choice questions."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1)
    images: list[str] = Field(..., min_length=1, description="image paths (relative to the JSONL file on disk)")
    question: str = Field(..., min_length=1)
    answer: str | float | list[float]
    answer_type: AnswerType
    choices: list[str] | None = None
    evidence: list[EvidenceBox] = Field(default_factory=list)
    required_ops: list[RequiredOp] = Field(default_factory=list)
    source: str = "unknown"
    split: str = "train"
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _answer_matches_type(self) -> Task:
        a, t = self.answer, self.answer_type
        if t == "number" and not isinstance(a, (int, float)):
            try:
                self.answer = float(str(a).strip())
            except ValueError:
                raise ValueError(f"answer {a!r} is not a number but answer_type is 'number'") from None
        elif t == "box":
            if not (isinstance(a, list) and len(a) == 4):
                raise ValueError(f"answer_type 'box' needs answer [x1, y1, x2, y2], got {a!r}")
        elif t in ("choice", "text"):
            if not isinstance(a, str):
                self.answer = str(a)
            if t == "choice":
                letter = str(self.answer).strip()
                if self.choices is not None and not (
                    len(letter) == 1 and letter.isalpha() and ord(letter.upper()) - ord("A") < len(self.choices)
                ):
                    raise ValueError(
                        f"choice answer {letter!r} must be a letter among A..{chr(ord('A') + len(self.choices) - 1)} "
                        f"({len(self.choices)} choices)"
                    )
        for ev in self.evidence:
            if ev.image >= len(self.images):
                raise ValueError(f"evidence box on image {ev.image} but the task has {len(self.images)} image(s)")
        if len(set(self.required_ops)) != len(self.required_ops):
            raise ValueError(f"required_ops has duplicates: {self.required_ops}")
        return self

    def required_set(self) -> set[str]:
        return set(self.required_ops)
