"""The wire format between the pool and a session: one frame = header + JSON + raw pixel blobs. Never pickle.

    header  = b"CVL1" + u32 json_length + u64 blob_bytes        (little-endian, 16 bytes)
    json    = UTF-8 object; key "blobs" lists each blob as [height, width] or [height, width, channels]
    blobs   = the uint8 pixels of each image, C order, back to back

The receiving side checks every length against its limits before reading (a session's process is untrusted: a
frame that is too big, malformed or inconsistent, JSON nested too deep included, is a protocol violation, and the
worker is killed). The fields of a result frame are checked by `sandbox.result_frame`.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"CVL1"
MAX_NOTES = 64  # notes per result: the worker keeps the first ones, the pool rejects a frame with more
HEADER = struct.Struct("<4sIQ")


class ProtocolError(Exception):
    """A frame broke the format or the limits."""


@dataclass(frozen=True)
class FrameLimits:
    max_json_bytes: int
    max_blob_bytes: int
    max_blobs: int
    max_pixels: int


def _shape_ok(shape: Any, limits: FrameLimits) -> tuple[int, ...]:
    if not isinstance(shape, list) or len(shape) not in (2, 3) or not all(isinstance(v, int) for v in shape):
        raise ProtocolError(f"bad blob shape {shape!r}")
    h, w = shape[0], shape[1]
    c = shape[2] if len(shape) == 3 else 1
    if not (0 < h and 0 < w and c in (1, 3, 4) and h * w <= limits.max_pixels):
        raise ProtocolError(f"blob shape out of limits: {shape!r}")
    return tuple(shape)


def encode(msg: dict[str, Any], blobs: list[np.ndarray] = ()) -> list[bytes | memoryview]:  # type: ignore[assignment]
    """The buffers of one frame (send them in order)."""
    arrays = [np.ascontiguousarray(b, dtype=np.uint8) for b in blobs]
    body = dict(msg)
    body["blobs"] = [list(a.shape) for a in arrays]
    data = json.dumps(body, separators=(",", ":"), allow_nan=True).encode()
    total = sum(a.nbytes for a in arrays)
    return [HEADER.pack(MAGIC, len(data), total) + data, *(memoryview(a).cast("B") for a in arrays)]  # type: ignore[arg-type]


def send(sock: socket.socket, msg: dict[str, Any], blobs: list[np.ndarray] = ()) -> None:  # type: ignore[assignment]
    """Blocking send of one frame (the worker's side), in one gather-write when the socket buffer allows, so the
    reader wakes up once for the whole frame."""
    bufs = [memoryview(b).cast("B") for b in encode(msg, blobs)]
    while bufs:
        sent = sock.sendmsg(bufs)
        while bufs and sent >= len(bufs[0]):
            sent -= len(bufs[0])
            bufs.pop(0)
        if bufs and sent:
            bufs[0] = bufs[0][sent:]


def recv_with_fds(sock: socket.socket, limits: FrameLimits, max_fds: int) -> tuple[dict[str, Any], list[int]]:
    """Blocking receive of a pixel-less frame whose first bytes carry file descriptors (SCM_RIGHTS)."""
    head, fds, _, _ = socket.recv_fds(sock, HEADER.size, max_fds)
    if not head:
        raise EOFError("peer closed the connection")
    head = bytes(head) + bytes(_recv_exactly(sock, HEADER.size - len(head))) if len(head) < HEADER.size else head
    jlen, blen = _parse_header(head, limits)
    msg, shapes = _parse_body(_recv_exactly(sock, jlen), blen, limits)
    if shapes:
        raise ProtocolError("a frame with descriptors carries no pixel blobs")
    return msg, list(fds)


def send_with_fds(sock: socket.socket, msg: dict[str, Any], fds: list[int]) -> int:
    """Send a pixel-less frame with descriptors attached; returns the bytes sent (the caller sends the rest)."""
    (data,) = encode(msg)
    return sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, __import__("array").array("i", fds))])


def _recv_exactly(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("peer closed the connection")
        got += k
    return buf


def _parse_header(head: bytes | bytearray, limits: FrameLimits) -> tuple[int, int]:
    magic, jlen, blen = HEADER.unpack(bytes(head))
    if magic != MAGIC:
        raise ProtocolError("bad frame magic")
    if jlen > limits.max_json_bytes:
        raise ProtocolError(f"JSON part of {jlen} bytes over the limit of {limits.max_json_bytes}")
    if blen > limits.max_blob_bytes:
        raise ProtocolError(f"pixel part of {blen} bytes over the limit of {limits.max_blob_bytes}")
    return jlen, blen


def _parse_body(data: bytes | bytearray, blen: int, limits: FrameLimits) -> tuple[dict[str, Any], list[tuple[int, ...]]]:
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nesting too deep
        raise ProtocolError(f"bad JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("frame is not a JSON object")
    shapes_raw = msg.pop("blobs", [])
    if not isinstance(shapes_raw, list) or len(shapes_raw) > limits.max_blobs:
        raise ProtocolError("bad or too many blobs")
    shapes = [_shape_ok(s, limits) for s in shapes_raw]
    if sum(math.prod(s) for s in shapes) != blen:
        raise ProtocolError("blob sizes do not add up to the frame's pixel part")
    return msg, shapes


def recv(sock: socket.socket, limits: FrameLimits) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Blocking receive of one frame."""
    jlen, blen = _parse_header(_recv_exactly(sock, HEADER.size), limits)
    msg, shapes = _parse_body(_recv_exactly(sock, jlen), blen, limits)
    blobs = [np.frombuffer(_recv_exactly(sock, int(np.prod(s))), dtype=np.uint8).reshape(s) for s in shapes]
    return msg, blobs


async def _arecv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> np.ndarray:
    buf = np.empty(n, dtype=np.uint8)  # not a bytearray: no zero-filling of what is overwritten at once
    view = memoryview(buf)  # type: ignore[arg-type]
    got = 0
    while got < n:
        k = await loop.sock_recv_into(sock, view[got:])
        if k == 0:
            raise EOFError("the session's process closed its socket")
        got += k
    return buf


async def arecv(sock: socket.socket, limits: FrameLimits) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Receive one frame on a non-blocking socket in the running loop (the pool's side)."""
    loop = asyncio.get_running_loop()
    jlen, blen = _parse_header((await _arecv_exactly(loop, sock, HEADER.size)).tobytes(), limits)
    msg, shapes = _parse_body((await _arecv_exactly(loop, sock, jlen)).tobytes(), blen, limits)
    blobs = []
    for s in shapes:
        blobs.append((await _arecv_exactly(loop, sock, int(np.prod(s)))).reshape(s))
    return msg, blobs


async def asend(sock: socket.socket, msg: dict[str, Any], blobs: list[np.ndarray] = ()) -> None:  # type: ignore[assignment]
    loop = asyncio.get_running_loop()
    for buf in encode(msg, blobs):
        await loop.sock_sendall(sock, buf)
