"""The session process: after `isolation.enter`, it loads the input images and runs blocks until killed.

Messages (see `wire`): worker -> pool `up` (the layers it has); pool -> worker `init` (input images as sealed
memfds, their names and settings); worker -> pool `ready`; then pool -> worker `run` (id, code, timeout) and
worker -> pool `result` (one per run, carrying the run's id and at most `wire.MAX_NOTES` notes; the pool checks
it field by field, see `result_frame`). After a block whose status
ends the session (timeout, memory, output limit) the worker sends its result and exits; the pool SIGKILLs it
anyway. After every block, in tier full, every other process of the session's PID namespace is killed (a
`kill(-1)` from its PID 1 reaches nothing outside it).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from typing import Any

import numpy as np

from sandbox import isolation, wire
from sandbox.interpreter import Interpreter
from sandbox.trace import TRACER, Provenance
from sandbox import geometry as G

INIT_LIMITS = wire.FrameLimits(max_json_bytes=64 << 20, max_blob_bytes=1 << 34, max_blobs=4096, max_pixels=1 << 31)


def _map_images(specs: list[dict[str, Any]], fds: list[int]) -> list[np.ndarray]:
    """The input images, mapped read-only from the pool's sealed memfds (checked against their declared size)."""
    import mmap

    if len(specs) != len(fds):
        raise ValueError("image descriptors do not match the image list")
    arrays = []
    for spec, fd in zip(specs, fds, strict=True):
        shape = tuple(int(v) for v in spec["shape"])
        n = int(np.prod(shape))
        if os.fstat(fd).st_size != n:
            raise ValueError("input image memfd has the wrong size")
        mem = mmap.mmap(fd, n, mmap.MAP_SHARED, mmap.PROT_READ)
        os.close(fd)
        arrays.append(np.frombuffer(mem, dtype=np.uint8).reshape(shape))
    return arrays


def _namespace(names: list[str], arrays: list[np.ndarray], modes: list[str]) -> dict[str, Any]:
    import math

    import cv2
    import matplotlib
    import matplotlib.pyplot as plt
    import skimage
    from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

    from sandbox.capture import display, show

    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__, "np": np, "numpy": np, "cv2": cv2,
                          "plt": plt, "matplotlib": matplotlib, "Image": Image, "ImageDraw": ImageDraw,
                          "ImageEnhance": ImageEnhance, "ImageFilter": ImageFilter, "ImageOps": ImageOps,
                          "skimage": skimage, "math": math, "show": show, "display": display}
    for i, (name, arr, mode) in enumerate(zip(names, arrays, modes, strict=True)):
        TRACER.enabled, was = False, TRACER.enabled
        try:
            im = Image.fromarray(arr, mode=mode) if mode in ("RGB", "RGBA", "L") else Image.fromarray(arr)
        finally:
            TRACER.enabled = was
        TRACER.set(im, Provenance(i, G.IDENTITY, ()))
        ns[name] = im
    return ns


def _reap_children(kill: bool) -> int:
    """Kill (tier full) and reap every other process of the session; returns how many were reaped."""
    if kill:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    reaped = 0
    deadline = time.monotonic() + 1.0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            return reaped
        if pid == 0:
            if not kill or time.monotonic() > deadline:
                return reaped
            time.sleep(0.001)
            continue
        reaped += 1


def serve(sock: socket.socket, spec: dict[str, Any], layers: isolation.Layers) -> None:
    """Answer the pool until it closes the socket or a block ends the session."""
    wire.send(sock, {"op": "up", "layers": layers.to_dict()})
    msg, fds = wire.recv_with_fds(sock, INIT_LIMITS, 1024)
    if msg.get("op") != "init":
        raise RuntimeError("expected init")
    arrays = _map_images(msg["images"], fds)
    interp = Interpreter(_namespace([im["name"] for im in msg["images"]], arrays,
                                    [im["mode"] for im in msg["images"]]), msg["settings"])
    wire.send(sock, {"op": "ready"})
    kill_children = layers.tier == "full" and not layers.no_fork
    while True:
        try:
            msg, _ = wire.recv(sock, INIT_LIMITS)
        except EOFError:
            return
        if msg.get("op") != "run":
            return
        result, images = interp.run(str(msg["code"]), float(msg["timeout"]))
        if kill_children:
            n = _reap_children(kill=True)
            if n:
                result["notes"].append(f"{n} child process(es) still running after the block were killed")
        result["op"] = "result"
        result["id"] = msg.get("id")
        del result["notes"][wire.MAX_NOTES:]
        if interp.settings.get("encoding") == "png":
            _send_png(sock, result, images)
        else:
            wire.send(sock, result, images)
        if result["status"] not in ("ok", "error"):
            os._exit(0)


def _send_png(sock: socket.socket, result: dict[str, Any], images: list[np.ndarray]) -> None:
    import cv2

    pngs = []
    for im in images:
        arr = im
        if arr.ndim == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
        ok, buf = cv2.imencode(".png", arr)
        pngs.append(buf.reshape(1, -1) if ok else np.zeros((1, 1), np.uint8))
    wire.send(sock, result, pngs)


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory(limit_bytes: int = 32 << 20) -> None:
    """Let glibc's malloc reuse freed blocks up to `limit_bytes` instead of returning them to the kernel at once.

    Rendering a matplotlib figure allocates and frees ~12 MiB of buffers; with glibc's defaults each block then
    faults ~3,000 fresh pages in again (~17% of a `plt.imshow(...); plt.show()` block's CPU time, measured in
    scripts/bench/sandbox.py). The memory stays in the session process, which lives for one trajectory."""
    from sandbox.linux.syscalls import LIBC

    mallopt = getattr(LIBC, "mallopt", None)  # glibc only
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, limit_bytes)
        mallopt(M_TRIM_THRESHOLD, 2 * limit_bytes)


def main(session_fd: int, spec: dict[str, Any]) -> None:
    """Entry point in the forked child (never returns)."""
    code = 0
    try:
        keep_freed_memory()
        layers = isolation.enter(spec, session_fd)
        sock = socket.socket(fileno=session_fd)
        sock.setblocking(True)
        serve(sock, spec, layers)
    except BaseException as exc:  # noqa: BLE001 - report the setup failure if the socket still works
        code = 70
        try:
            sock = socket.socket(fileno=session_fd)
            wire.send(sock, {"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
        except BaseException:  # noqa: BLE001
            pass
    os._exit(code)
