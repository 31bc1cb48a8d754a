"""Reading a session's `result` frame into an `ExecResult`, strictly: the session process is untrusted, so every
field is checked for its type and limits, and anything else (a missing or unknown field, a wrong type, a result
for another block, an image that is not what the configured encoding says) raises `ProtocolError`. The caller
turns that into a `crashed` result and kills the process; nothing a session sends can make `run()` raise.

Images come as raw pixels (`image_encoding: raw`: each blob H x W x C, checked by `wire`) or as PNG files
(`image_encoding: png`: each blob 1 x N bytes, opened as PNG only, its size checked before it is decoded).
Either way the pixel count of every image is at most `max_image_pixels`, exactly as the worker downscales.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from sandbox.config import SandboxConfig
from sandbox.result import CapturedImage, ErrorInfo, ExecResult, ExecStatus, ImageRegion, OpRecord
from sandbox.wire import MAX_NOTES, FrameLimits, ProtocolError

FIELDS = {"op", "id", "status", "stdout", "stderr", "error", "value_repr", "duration_s", "notes", "images", "ops"}
PNG_OVERHEAD = 1 << 16  # a PNG of noise is slightly larger than its raw pixels


def result_limits(c: SandboxConfig) -> FrameLimits:
    """The frame limits of a result under config `c` (text caps + op records + images)."""
    text_cap = 6 * (c.max_stdout_bytes + c.max_stderr_bytes + c.max_value_repr_chars) + 64 * 1024
    per_image = c.max_image_pixels * 4 + (PNG_OVERHEAD if c.image_encoding == "png" else 0)
    return FrameLimits(max_json_bytes=text_cap + 800 * c.max_ops + 2000 * c.max_images + (1 << 20),
                       max_blob_bytes=max(1, c.max_images) * per_image, max_blobs=c.max_images,
                       max_pixels=per_image if c.image_encoding == "png" else c.max_image_pixels)


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise ProtocolError(f"malformed result: {what}")


def _str(v: Any, what: str) -> str:
    _need(isinstance(v, str), f"{what} is not a string")
    return v


def _opt_int(v: Any, what: str) -> int | None:
    _need(v is None or (isinstance(v, int) and not isinstance(v, bool)), f"{what} is not an integer")
    return v


def _box(v: Any, what: str) -> tuple[float, float, float, float]:
    _need(isinstance(v, list) and len(v) == 4 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                      and math.isfinite(x) for x in v), f"{what} is not a box")
    return (float(v[0]), float(v[1]), float(v[2]), float(v[3]))


def _dict(v: Any, what: str, keys: set[str]) -> dict[str, Any]:
    _need(isinstance(v, dict) and set(v) <= keys, f"{what} is not an object with fields {sorted(keys)}")
    return v


def _region(v: Any) -> ImageRegion | None:
    if v is None:
        return None
    d = _dict(v, "image region", {"input_index", "box", "ops"})
    idx = _opt_int(d.get("input_index"), "region input_index")
    _need(idx is not None and isinstance(d.get("ops"), list), "region without input_index or ops")
    return ImageRegion(idx, _box(d.get("box"), "region box"), [_str(o, "region op") for o in d["ops"]])  # type: ignore[arg-type]


def _op(v: Any) -> OpRecord:
    d = _dict(v, "op record", {"op", "api", "input_index", "box", "params"})
    params = d.get("params", {})
    _need(isinstance(params, dict), "op params are not an object")
    box = _box(d["box"], "op box") if d.get("box") is not None else None
    return OpRecord(_str(d.get("op"), "op name"), _str(d.get("api"), "op api"),
                    _opt_int(d.get("input_index"), "op input_index"), box, params)


def _error(v: Any) -> ErrorInfo | None:
    if v is None:
        return None
    d = _dict(v, "error", {"type", "message", "traceback", "line"})
    return ErrorInfo(_str(d.get("type"), "error type"), _str(d.get("message"), "error message"),
                     _str(d.get("traceback", ""), "error traceback"), _opt_int(d.get("line"), "error line"))


def _decode_png(blob: np.ndarray, max_pixels: int) -> np.ndarray:
    from PIL import Image

    _need(blob.ndim == 2 and blob.shape[0] == 1, "a PNG blob is not 1 x N bytes")
    try:
        with Image.open(io.BytesIO(blob.tobytes()), formats=["PNG"]) as im:
            _need(im.width * im.height <= max_pixels, f"PNG of {im.width}x{im.height} over max_image_pixels")
            _need(im.mode in ("L", "RGB", "RGBA"), f"PNG mode {im.mode} (the worker writes L, RGB or RGBA)")
            im.load()
            return np.asarray(im)
    except ProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoding untrusted bytes: whatever Pillow raises is a violation
        raise ProtocolError(f"malformed result: undecodable PNG ({type(exc).__name__}: {exc})") from None


def parse_result(msg: dict[str, Any], blobs: list[np.ndarray], block_id: int, c: SandboxConfig) -> ExecResult:
    """The `ExecResult` of block `block_id` from its frame; ProtocolError for anything malformed or out of turn."""
    _need(set(msg) <= FIELDS, f"unknown fields {sorted(set(msg) - FIELDS)}")
    _need(msg.get("op") == "result", f"a {msg.get('op')!r} frame where a result was due")
    _need(msg.get("id") == block_id and type(msg.get("id")) is int,
          f"a result for block {msg.get('id')!r} while block {block_id} runs (forged or out of turn)")
    try:
        status = ExecStatus(msg.get("status"))
    except ValueError:
        raise ProtocolError(f"malformed result: unknown status {msg.get('status')!r}") from None
    metas = msg.get("images", [])
    _need(isinstance(metas, list) and len(metas) == len(blobs), "image list does not match the pixel blobs")
    if c.image_encoding == "png":
        blobs = [_decode_png(b, c.max_image_pixels) for b in blobs]
    images = []
    for meta, arr in zip(metas, blobs, strict=True):
        d = _dict(meta, "image", {"source", "region"})
        _need(arr.shape[0] * arr.shape[1] <= c.max_image_pixels, "image over max_image_pixels")
        images.append(CapturedImage(arr, _str(d.get("source"), "image source"), _region(d.get("region"))))
    ops = msg.get("ops", [])
    notes = msg.get("notes", [])
    _need(isinstance(ops, list) and len(ops) <= max(c.max_ops, 0), "too many op records")
    _need(isinstance(notes, list) and len(notes) <= MAX_NOTES, "more notes than a worker writes")
    value_repr = msg.get("value_repr")
    duration = msg.get("duration_s", 0.0)
    _need(isinstance(duration, (int, float)) and not isinstance(duration, bool), "duration is not a number")
    return ExecResult(
        status=status,
        stdout=_str(msg.get("stdout", ""), "stdout")[: c.max_stdout_bytes * 2],
        stderr=_str(msg.get("stderr", ""), "stderr")[: c.max_stderr_bytes * 2],
        error=_error(msg.get("error")), images=images, ops=[_op(o) for o in ops],
        value_repr=_str(value_repr, "value_repr")[: c.max_value_repr_chars] if value_repr is not None else None,
        notes=[_str(n, "note")[:500] for n in notes],
    )
