"""The session's minimal root (tier full): a small read-only tmpfs holding read-only copies of exactly the host
paths the interpreter needs, a fresh /proc, a few device nodes, and the session's size-limited tmpfs scratch
(/tmp) and /dev/shm; `pivot_root` makes it the root and the host's tree is detached.

After this, no other host path exists for the session: `stat`, `connect()` to a UNIX socket, inotify, `chmod`,
extended attributes... have nothing to act on but the exposed copies, which are read-only mounts (EROFS).

Two steps, because the host paths are opened while the process still has the credentials that can reach them
(the warm parent's uid: e.g. a Python installation under /root), and mounted after it switched to the session's
unprivileged uid (which could not even search /root): `plan()` + `open_sources()`, then `build()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sandbox.linux import mounts

DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
DEV_LINKS = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1",
             "/dev/stderr": "/proc/self/fd/2"}
STAGE = "/tmp"  # where the new root is assembled (hidden by it; the host's /tmp is never exposed)
OLD = "/.old-root"


@dataclass
class Plan:
    """What the new root holds: read-only copies (symlink-free paths) and symlinks reproduced as they are."""

    binds: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


def _expose(path: str, plan: Plan, depth: int = 0) -> None:
    """Add `path`, reproducing every symlink on the way (`/lib -> usr/lib`, a venv's `bin/python -> ...`)."""
    if depth > 16:
        return
    cur = ""
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        cur = f"{cur}/{part}"
        if os.path.islink(cur):
            plan.links[cur] = os.readlink(cur)
            rest = "/".join(parts[i + 1:])
            target = os.path.realpath(cur)
            _expose(f"{target}/{rest}" if rest else target, plan, depth + 1)
            return
        if not os.path.exists(cur):
            return
    if cur:
        plan.binds.append(cur)


def plan(paths: list[str]) -> Plan:
    """The binds and links that expose `paths` (missing ones are skipped; nested binds merged into their parent)."""
    p = Plan()
    for path in paths:
        _expose(os.path.normpath(path), p)
    binds: list[str] = []
    for b in sorted(set(p.binds)):
        if not any(b == q or b.startswith(q + "/") for q in binds):
            binds.append(b)
    links = {k: v for k, v in p.links.items()
             if not any(k.startswith(q + "/") for q in binds) and k not in binds}
    return Plan(binds, links)


def open_sources(p: Plan) -> list[tuple[str, int, bool]]:
    """(path, O_PATH descriptor, is_dir) for every bind; call before giving up the credentials that reach them."""
    out = []
    for path in p.binds + [d for d in DEVICES if os.path.exists(d)]:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue  # not reachable by the warm parent's uid either: not exposed
        out.append((path, fd, os.path.isdir(path)))
    return out


def _mountpoint(target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def build(sources: list[tuple[str, int, bool]], links: dict[str, str], scratch_bytes: int, shm_bytes: int) -> None:
    """Assemble the root at STAGE, pivot into it, detach the host's tree, and make the root read-only.

    The caller is in its own mount namespace (made private) with CAP_SYS_ADMIN there; the descriptors are closed."""
    mounts.mount_tmpfs(STAGE, 1 << 20, mode="0755", noexec=True, inodes=1024)
    # The scratch /tmp first: host paths that live under /tmp (a checkout or a venv there) are then bound read-only
    # inside it instead of being hidden by it (or colliding with its mountpoint).
    os.mkdir(STAGE + "/tmp")
    mounts.mount_tmpfs(STAGE + "/tmp", scratch_bytes)
    for path, fd, is_dir in sources:
        try:
            _mountpoint(STAGE + path, is_dir)
            is_device = path.startswith("/dev/")
            mounts.bind_read_only(fd, STAGE + path, extra=mounts.MOUNT_ATTR_NOEXEC if is_device else 0)
        finally:
            os.close(fd)
    for path, target in {**links, **DEV_LINKS}.items():
        os.makedirs(os.path.dirname(STAGE + path), exist_ok=True)
        os.symlink(target, STAGE + path)
    os.mkdir(STAGE + "/proc")
    mounts.mount_proc(STAGE + "/proc")  # while the host's /proc is still visible (the kernel requires one)
    os.makedirs(STAGE + "/dev/shm", exist_ok=True)
    mounts.mount_tmpfs(STAGE + "/dev/shm", shm_bytes)
    os.mkdir(STAGE + OLD)
    mounts.pivot_root(STAGE, STAGE + OLD)
    os.chdir("/")
    mounts.detach(OLD)
    os.rmdir(OLD)
    mounts.set_attrs(mounts.AT_FDCWD, "/", mounts.MOUNT_ATTR_RDONLY | mounts.MOUNT_ATTR_NOSUID |
                     mounts.MOUNT_ATTR_NODEV, recursive=False)
