"""Mount primitives for the session's private filesystem view (inside its own mount namespace): tmpfs and proc
mounts, read-only clones of host paths (`open_tree` + `mount_setattr` + `move_mount`), and `pivot_root`.
`sandbox.linux.rootfs` assembles them into the session's minimal root."""

from __future__ import annotations

import ctypes
import os

from sandbox.linux.syscalls import LIBC, check, nr

MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8

LIBC.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
LIBC.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def make_private() -> None:
    """Stop mount events from propagating back to the host (must come first)."""
    check(LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount(make-rprivate /)")


def mount_tmpfs(target: str, size_bytes: int, *, mode: str = "1777", noexec: bool = True,
                inodes: int = 4096) -> None:
    flags = MS_NOSUID | MS_NODEV | (MS_NOEXEC if noexec else 0)
    opts = f"size={size_bytes},mode={mode},nr_inodes={inodes}".encode()
    check(LIBC.mount(b"tmpfs", target.encode(), b"tmpfs", flags, opts), f"mount(tmpfs on {target})")


def mount_proc(target: str = "/proc") -> None:
    """A new procfs instance for the caller's PID namespace (the caller must be in it, e.g. its PID 1)."""
    check(LIBC.mount(b"proc", target.encode(), b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
          f"mount(proc on {target})")


def set_attrs(dirfd: int, path: str, attrs: int, *, recursive: bool) -> None:
    """Add mount attributes (MOUNT_ATTR_*) to the mount at `path` (relative to `dirfd`), and below it."""
    flags = (AT_RECURSIVE if recursive else 0) | (AT_EMPTY_PATH if not path else 0)
    attr = _MountAttr(attrs, 0, 0, 0)
    check(LIBC.syscall(ctypes.c_long(nr("mount_setattr")), ctypes.c_int(dirfd), path.encode(),
                       ctypes.c_uint(flags), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
          f"mount_setattr({path or dirfd})")


def bind_read_only(source_fd: int, target: str, *, extra: int = 0) -> None:
    """Mount a read-only copy of the tree `source_fd` (an O_PATH descriptor) at `target`, submounts included.

    The copy is made read-only before it is attached, so it is never writable, not even for an instant; the
    source is named by descriptor, so the path to it need not be searchable by the session's uid."""
    tree = check(LIBC.syscall(ctypes.c_long(nr("open_tree")), ctypes.c_int(source_fd), b"",
                              ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE)),
                 f"open_tree({target})")
    try:
        set_attrs(tree, "", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | extra, recursive=True)
        check(LIBC.syscall(ctypes.c_long(nr("move_mount")), ctypes.c_int(tree), b"", ctypes.c_int(AT_FDCWD),
                           target.encode(), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount({target})")
    finally:
        os.close(tree)


def pivot_root(new_root: str, put_old: str) -> None:
    check(LIBC.syscall(ctypes.c_long(nr("pivot_root")), new_root.encode(), put_old.encode()), "pivot_root")


def detach(target: str) -> None:
    check(LIBC.umount2(target.encode(), MNT_DETACH), f"umount2({target}, MNT_DETACH)")
