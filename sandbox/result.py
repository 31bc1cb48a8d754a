"""What one code block did: `ExecResult`, the sandbox's only output type (docs/architecture.md, "The data that flows" 3).

Failures are data: a timeout, a crash, a memory or output limit hit all come back as an `ExecResult` with the
matching `status`, never as an exception into the caller. Other packages (rollout, rewards, data) read these
types; they are plain dataclasses with a JSON form (images go to files, see `to_dict(image_writer=...)`).

Conventions shared with the rest of the project:

- Images are uint8 numpy arrays, H x W (grey) or H x W x 3 (RGB) or H x W x 4 (RGBA), in capture order.
- Boxes are `(x1, y1, x2, y2)` in the pixel coordinates of the *original* input image (x to the right, y down,
  x2/y2 exclusive), whatever chain of rotations, flips, crops and resizes produced the image.
- Operation names: `crop`, `rotate90` (90 degrees counter-clockwise: PIL `rotate(90)`, `np.rot90(k=1)`,
  `cv2.ROTATE_90_COUNTERCLOCKWISE`), `rotate180`, `rotate270` (90 degrees clockwise), `rotate` (any other
  angle), `flip_h` (mirror left-right), `flip_v` (mirror top-bottom), `resize`, and free-form names for the rest
  (`enhance`, `filter`, `threshold`, `draw`, `convert`, ...). The first six are the "core" ops that tasks list as
  required (`Task.required_ops`) and rewards check.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]

CORE_OPS: tuple[str, ...] = ("rotate90", "rotate180", "rotate270", "flip_h", "flip_v", "crop")
ORIENTATION_OPS: tuple[str, ...] = ("rotate90", "rotate180", "rotate270", "flip_h", "flip_v")


class ExecStatus(str, enum.Enum):
    """Why a code block stopped. Everything except OK and ERROR means the session's worker was killed or died."""

    OK = "ok"  # ran to the end
    ERROR = "error"  # raised an exception (the session survives with the state before the failing statement)
    TIMEOUT = "timeout"  # wall or CPU time limit; worker killed
    MEMORY = "memory"  # address-space / memory limit; worker killed (or MemoryError it could not survive)
    OUTPUT_LIMIT = "output_limit"  # stdout/stderr/image bytes over the hard cap; worker killed
    CRASHED = "crashed"  # the worker died by itself (segfault, os._exit, killed by a signal it sent)
    KILLED = "killed"  # killed by the pool (pool closing, session cancelled)

    @property
    def session_alive(self) -> bool:
        """Whether the session's interpreter still exists after a block with this status."""
        return self in (ExecStatus.OK, ExecStatus.ERROR)


@dataclass
class ErrorInfo:
    """An exception raised by user code; `traceback` is trimmed to frames in the user's code."""

    type: str
    message: str
    traceback: str = ""
    line: int | None = None  # line in the user's code block (1-based), when known

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback, "line": self.line}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErrorInfo:
        return cls(type=d["type"], message=d["message"], traceback=d.get("traceback", ""), line=d.get("line"))


@dataclass
class ImageRegion:
    """Where an image came from: which input image, and which part of it (original pixel coordinates).

    `ops` is the chain from the input to this image, e.g. `["rotate90", "crop", "resize"]`. `box` is the
    bounding box in the input image of the pixels this image shows (for arbitrary-angle rotations, the box
    of the rotated content; it can extend past the image, see `clipped_box`).
    """

    input_index: int
    box: Box
    ops: list[str] = field(default_factory=list)

    def clipped_box(self, width: int, height: int) -> Box:
        x1, y1, x2, y2 = self.box
        return (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))

    def to_dict(self) -> dict[str, Any]:
        return {"input_index": self.input_index, "box": list(self.box), "ops": list(self.ops)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageRegion:
        return cls(input_index=int(d["input_index"]), box=tuple(float(v) for v in d["box"]), ops=list(d["ops"]))  # type: ignore[arg-type]


@dataclass
class CapturedImage:
    """An image the code showed. `source` is how it was captured: `plt.show`, `figure`, `Image.show`,
    `cv2.imshow`, `show`, `display` or `last_expr`. `region` is set when the sandbox could trace
    the image back to an input image."""

    array: np.ndarray
    source: str
    region: ImageRegion | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), PIL's order."""
        return int(self.array.shape[1]), int(self.array.shape[0])

    def to_pil(self) -> Any:
        from PIL import Image

        return Image.fromarray(self.array)

    def to_dict(self, image_writer: Callable[[np.ndarray], str]) -> dict[str, Any]:
        """`image_writer(array) -> reference` stores the pixels (e.g. as a PNG next to the JSONL) and returns
        what to record (a relative path)."""
        return {
            "image": image_writer(self.array),
            "size": list(self.size),
            "source": self.source,
            "region": self.region.to_dict() if self.region else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], image_reader: Callable[[str], np.ndarray]) -> CapturedImage:
        region = ImageRegion.from_dict(d["region"]) if d.get("region") else None
        return cls(array=image_reader(d["image"]), source=d["source"], region=region)


@dataclass
class OpRecord:
    """One traced image operation. `input_index`/`box` are set when the operand derives from an input image
    (`box` for crops: the crop in original pixel coordinates; for other ops: the region the result shows)."""

    op: str
    api: str  # the entry point that ran, e.g. "PIL.Image.Image.crop", "numpy.ndarray.__getitem__", "cv2.resize"
    input_index: int | None = None
    box: Box | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "api": self.api, "input_index": self.input_index,
                "box": list(self.box) if self.box is not None else None, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpRecord:
        box = tuple(float(v) for v in d["box"]) if d.get("box") is not None else None
        return cls(op=d["op"], api=d["api"], input_index=d.get("input_index"), box=box, params=d.get("params", {}))  # type: ignore[arg-type]


@dataclass
class ExecResult:
    """The outcome of one `session.run(code)`."""

    status: ExecStatus
    stdout: str = ""
    stderr: str = ""
    error: ErrorInfo | None = None
    images: list[CapturedImage] = field(default_factory=list)
    ops: list[OpRecord] = field(default_factory=list)
    duration_s: float = 0.0
    value_repr: str | None = None  # repr of the last expression (notebook style), when it is not an image
    notes: list[str] = field(default_factory=list)  # e.g. "stdout truncated at 8192 bytes", "3 images dropped"

    @property
    def ok(self) -> bool:
        return self.status is ExecStatus.OK

    def ops_used(self) -> set[str]:
        """Names of the operations that ran in this block (from the trace)."""
        return {o.op for o in self.ops}

    def to_dict(self, image_writer: Callable[[np.ndarray], str]) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "error": self.error.to_dict() if self.error else None,
            "images": [im.to_dict(image_writer) for im in self.images],
            "ops": [o.to_dict() for o in self.ops],
            "duration_s": self.duration_s,
            "value_repr": self.value_repr,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], image_reader: Callable[[str], np.ndarray]) -> ExecResult:
        return cls(
            status=ExecStatus(d["status"]),
            stdout=d.get("stdout", ""),
            stderr=d.get("stderr", ""),
            error=ErrorInfo.from_dict(d["error"]) if d.get("error") else None,
            images=[CapturedImage.from_dict(x, image_reader) for x in d.get("images", [])],
            ops=[OpRecord.from_dict(x) for x in d.get("ops", [])],
            duration_s=float(d.get("duration_s", 0.0)),
            value_repr=d.get("value_repr"),
            notes=list(d.get("notes", [])),
        )
