"""The warm parent ("zygote"): imports NumPy, Pillow, OpenCV, scikit-image and matplotlib once (threads pinned
to 1), installs the capture hooks and the operation trace, then forks one process per session on request.

Started by the pool as `python -I -c ...` with a scrubbed environment (no trainer secrets reach sessions) and
a SOCK_SEQPACKET control socket. Requests: `{"op": "spawn", "id", "spec"}` with the session's socket end
attached (SCM_RIGHTS). Replies: `{"id", "pid"}` with a pidfd attached, or `{"id", "error"}`; and, whenever a
session process ends, `{"exit": pid, "status": waitstatus}`. The zygote is its sessions' parent and reaps them;
it dies with the pool (PR_SET_PDEATHSIG) and its sessions die with it.

Where it runs as root, each session process gets a host uid (and gid) of its own from the configured range
(`SessionUids`), mapped to uid 0 of the session's user namespace: a uid that owns nothing on the host, so a
session cannot change host files' metadata, and the per-uid kernel quotas (RLIMIT_NPROC, pipe buffers) are the
session's own. It grants sessions read access to its own `sys.path` (it runs `-I`: not the trainer's).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

WARM_MODULES = ("numpy", "PIL.Image", "PIL.ImageOps", "PIL.ImageEnhance", "PIL.ImageDraw", "PIL.ImageFilter",
                "PIL.ImageFont", "PIL.ImageChops", "PIL.ImageStat", "cv2", "matplotlib", "matplotlib.pyplot",
                "skimage", "skimage.color", "skimage.exposure", "skimage.filters", "skimage.measure",
                "skimage.morphology", "skimage.transform", "skimage.feature", "skimage.segmentation",
                "skimage.util", "skimage.draw", "scipy.ndimage", "math", "statistics", "collections", "itertools",
                "json", "re", "io", "base64", "mmap")


def warm_up() -> dict[str, Any]:
    """Import and exercise the libraries once so that sessions start with everything paid for."""
    import importlib

    t0 = time.perf_counter()
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    cv2.setNumThreads(1)
    from sandbox import capture, trace_cv2, trace_numpy, trace_pil

    trace_pil.install()
    trace_numpy.install()
    trace_cv2.install()
    capture.install()
    im = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    im.crop((0, 0, 4, 4)).rotate(90).resize((8, 8))
    cv2.resize(np.zeros((8, 8, 3), np.uint8), (4, 4))
    fig = plt.figure()
    plt.imshow(np.zeros((4, 4)))
    plt.title("warm")
    capture.figure_to_array(fig)
    plt.close(fig)
    import sandbox.interpreter
    import sandbox.worker  # noqa: F401

    import gc

    gc.collect()
    gc.freeze()  # keep the imported objects out of the collector: fewer copy-on-write pages per session
    return {"warm_s": time.perf_counter() - t0}


def _send(ctrl: socket.socket, msg: dict[str, Any], fds: list[int] = ()) -> None:  # type: ignore[assignment]
    data = json.dumps(msg).encode()
    if fds:
        socket.send_fds(ctrl, [data], list(fds))
    else:
        ctrl.send(data)


CGROUPS: Any = None
READ_PATHS: list[str] = []
OTHERS_REACH = False  # whether a uid that owns nothing can read READ_PATHS (needed without a private root)


def others_can_read(paths: list[str]) -> bool:
    """Whether every path (and every directory above it) is readable and searchable by any uid."""
    for path in paths:
        cur = os.path.realpath(path)
        while True:
            try:
                mode = os.stat(cur).st_mode
            except OSError:
                return False
            if not mode & 0o001 or (cur == os.path.realpath(path) and not mode & 0o004):
                return False
            if cur == "/":
                break
            cur = os.path.dirname(cur)
    return True


class SessionUids:
    """Host uids (and the same gids) handed to session processes, one per live process, from the range the pool
    configures. Only a root warm parent can hand them out; otherwise every session gets its own uid."""

    def __init__(self) -> None:
        self.by_pid: dict[int, int] = {}
        self.root = os.geteuid() == 0

    def take(self, base: int, count: int) -> int | None:
        if not self.root:
            return os.geteuid()
        used = set(self.by_pid.values())
        return next((u for u in range(base, base + count) if u not in used), None)

    def hold(self, pid: int, uid: int) -> None:
        if self.root:
            self.by_pid[pid] = uid

    def release(self, pid: int) -> None:
        self.by_pid.pop(pid, None)


UIDS = SessionUids()


def _spawn(ctrl: socket.socket, req: dict[str, Any], session_fd: int) -> None:
    from sandbox.linux.clone import CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, \
        CLONE_NEWUSER, CLONE_NEWUTS, clone_fork, write_id_maps
    from sandbox.linux.pidfd import pidfd_open

    full = req["spec"]["tier"] == "full"
    uid = UIDS.take(int(req["spec"]["uid_base"]), int(req["spec"]["uid_count"]))
    if uid is None:
        os.close(session_fd)
        _send(ctrl, {"id": req["id"], "error": f"all {req['spec']['uid_count']} session uids from "
                     f"{req['spec']['uid_base']} are in use (sessions not yet reaped?)"})
        return
    gid = uid if UIDS.root else os.getegid()
    spec = {**req["spec"], "read_paths": READ_PATHS}
    if not full and UIDS.root and OTHERS_REACH:  # no user namespace: the session switches uid itself, owns its scratch
        spec.update(uid=uid, gid=gid)
        os.chown(spec["scratch_dir"], uid, gid)
    r, w = os.pipe()
    try:
        if full:
            flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP
            pid = clone_fork(flags)
        else:
            pid = os.fork()
    except OSError as exc:
        os.close(r)
        os.close(w)
        os.close(session_fd)
        _send(ctrl, {"id": req["id"], "error": f"fork failed: {exc}", "errno": exc.errno})
        return
    if pid == 0:  # the session process
        try:
            os.close(w)
            ctrl.detach()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            go = os.read(r, 1)
            if go not in (b"F", b"N"):
                os._exit(71)
            os.close(r)
            spec = {**spec, "process_cap": go == b"F"}
            from sandbox import worker

            worker.main(session_fd, spec)
        finally:
            os._exit(72)
    os.close(r)
    UIDS.hold(pid, uid)
    try:
        if full:  # uid/gid 0 inside are the session's unprivileged host ids outside
            write_id_maps(pid, 0, uid, 0, gid)
        pidfd = pidfd_open(pid)
    except OSError as exc:
        os.kill(pid, signal.SIGKILL)
        os.close(w)
        os.close(session_fd)
        _send(ctrl, {"id": req["id"], "error": f"namespace setup failed: {exc}"})
        return
    # Fork is allowed only where a process cap is enforced: a pids cgroup, or RLIMIT_NPROC (which the kernel does
    # not enforce for the host's root user; sessions never run as it).
    capped = spec["pids_cgroup"] and CGROUPS is not None and CGROUPS.add(pid, int(spec["processes"]))
    os.write(w, b"F" if capped or uid != 0 else b"N")
    os.close(w)
    os.close(session_fd)
    _send(ctrl, {"id": req["id"], "pid": pid}, [pidfd])
    os.close(pidfd)


def _reap(ctrl: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        UIDS.release(pid)
        if CGROUPS is not None:
            CGROUPS.remove(pid)
        try:
            _send(ctrl, {"exit": pid, "status": status})
        except OSError:
            pass


def serve(ctrl: socket.socket) -> None:
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    poll = select.poll()
    poll.register(ctrl.fileno(), select.POLLIN)
    poll.register(wake_r, select.POLLIN)
    while True:
        for fd, _ in poll.poll():
            if fd == wake_r:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
                _reap(ctrl)
                continue
            data, fds, _, _ = socket.recv_fds(ctrl, 1 << 20, 4)
            if not data:
                return  # the pool is gone
            req = json.loads(data)
            if req.get("op") == "spawn" and fds:
                for extra in fds[1:]:
                    os.close(extra)
                _spawn(ctrl, req, fds[0])
            else:
                for fd_ in fds:
                    os.close(fd_)
        _reap(ctrl)


def main() -> None:
    from sandbox.linux.capabilities import set_parent_death_signal

    set_parent_death_signal(signal.SIGKILL)
    if os.geteuid() == 0:
        os.setgroups([])  # sessions inherit no supplementary group (root's group 0 would open group-readable files)
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    info = warm_up()
    from sandbox.isolation import parent_namespace_ids, python_read_paths

    global READ_PATHS
    global OTHERS_REACH
    READ_PATHS = python_read_paths(str(Path(__file__).resolve().parents[1]))  # this interpreter's own paths (-I)
    OTHERS_REACH = others_can_read(READ_PATHS)
    from sandbox.linux import landlock, seccomp

    global CGROUPS
    from sandbox.linux.cgroups import PidsCgroups

    CGROUPS = PidsCgroups()
    info["cgroup"] = CGROUPS.base
    info.update({"op": "hello", "pid": os.getpid(), "read_paths": READ_PATHS, "landlock_abi": landlock.abi_version(),
                 "seccomp": seccomp.available(), "parent_ns": parent_namespace_ids(), "uid": os.geteuid()})
    with open("/proc/self/status") as f:
        info["vm_size_kb"] = next((int(line.split()[1]) for line in f if line.startswith("VmSize:")), 0)
    _send(ctrl, info)
    try:
        serve(ctrl)
    finally:
        if CGROUPS.base:
            from sandbox.linux.cgroups import remove_tree

            _reap(ctrl)
            remove_tree(CGROUPS.base)


if __name__ == "__main__":
    main()
