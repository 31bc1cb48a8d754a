"""A seccomp-BPF filter: the syscalls model code has no business making, denied with an errno.

Denied (EPERM): creating sockets (`socket()` of any family: TCP/UDP/raw/netlink/packet, and UNIX sockets that
could `connect()` to a daemon's socket by path), `connect`/`bind`/`listen`, and `socketpair` except AF_UNIX
stream/seqpacket pairs (so a session's UNIX sockets are only the one the pool made and pairs it makes itself);
ptrace and cross-process memory access, mount and every new-mount-API call, namespace creation (unshare, setns,
clone with CLONE_NEW*), bpf, perf_event_open, io_uring (it would bypass this filter), userfaultfd, keyrings,
kernel modules, kexec, reboot, swap, clock setting, chroot/pivot_root, handle-based opens, pidfd_getfd, the x32
ABI; changing file owners (the chown family); inotify and fanotify (watches on shared, read-only host
directories would reveal what other sessions open). Extended attributes (get/set/list/remove) fail with
EOPNOTSUPP, as on a filesystem without them, which libraries (shutil.copy2) handle. With `host_fs_writable`
false (tiers without a private root, where Landlock does not cover metadata) also chmod and the utime family.
With `no_fork`, also fork/vfork/execve/execveat and clone without CLONE_THREAD (threads still work).
`clone3` returns ENOSYS so that libc falls back to `clone`, whose flags this filter can inspect.
Everything else is allowed: the filter is a deny-list on top of the private root, Landlock and the namespaces,
not the only wall.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct

from sandbox.linux.clone import CLONE_THREAD, NAMESPACE_FLAGS
from sandbox.linux.syscalls import AUDIT_ARCH, LIBC, MACHINE, SYSCALLS, check

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
X32_SYSCALL_BIT = 0x40000000

# classic BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_JA = 0x05
_AND_K = 0x54

_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0 = 16  # low 32 bits of args[0] (little-endian)
_OFF_ARG1 = 24
_TYPE_MASK = 0xF  # SOCK_NONBLOCK / SOCK_CLOEXEC live above the type bits

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "unshare", "setns", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "add_key", "request_key", "keyctl",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "acct", "quotactl", "quotactl_fd", "syslog", "vhangup", "settimeofday", "clock_settime", "adjtimex",
    "clock_adjtime", "sethostname", "setdomainname", "name_to_handle_at", "open_by_handle_at", "lookup_dcookie",
    "nfsservctl", "uselib", "iopl", "ioperm", "personality",
)
NO_FORK_DENIED = ("fork", "vfork", "execve", "execveat")
SOCKET_DENIED = ("socket", "connect", "bind", "listen")
OWNER_DENIED = ("chown", "fchown", "lchown", "fchownat")
WATCH_DENIED = ("inotify_init", "inotify_init1", "inotify_add_watch", "fanotify_init", "fanotify_mark")
METADATA_DENIED = ("chmod", "fchmod", "fchmodat", "fchmodat2", "utime", "utimes", "futimesat", "utimensat")
XATTR_UNSUPPORTED = ("setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
                     "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "setxattrat",
                     "getxattrat", "listxattrat", "removexattrat")


def available() -> bool:
    """Whether this architecture's syscall table is known (the filter itself exists on every modern kernel)."""
    return SYSCALLS is not None and MACHINE in AUDIT_ARCH


def denied_names(no_fork: bool, host_fs_writable: bool) -> list[str]:
    """The syscalls this machine knows that the filter denies with EPERM (for tests and documentation)."""
    assert SYSCALLS is not None
    groups = DENIED + SOCKET_DENIED + OWNER_DENIED + WATCH_DENIED + (NO_FORK_DENIED if no_fork else ()) + \
        (() if host_fs_writable else METADATA_DENIED)
    return [n for n in groups if n in SYSCALLS]


def _program(no_fork: bool, host_fs_writable: bool) -> list[tuple[int, int, int, int]]:
    assert SYSCALLS is not None
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    ins: list[tuple[int, object, object, int]] = []  # (code, jt label/int, jf label/int, k)
    ins.append((_LD_W_ABS, 0, 0, _OFF_ARCH))
    ins.append((_JEQ_K, 1, 0, AUDIT_ARCH[MACHINE]))
    ins.append((_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS))
    ins.append((_LD_W_ABS, 0, 0, _OFF_NR))
    if MACHINE == "x86_64":
        ins.append((_JGE_K, "deny", 0, X32_SYSCALL_BIT))
    for name in denied_names(no_fork, host_fs_writable):
        ins.append((_JEQ_K, "deny", 0, SYSCALLS[name]))
    for name in XATTR_UNSUPPORTED:
        if name in SYSCALLS:
            ins.append((_JEQ_K, "unsupported", 0, SYSCALLS[name]))
    ins.append((_JEQ_K, "socketpair", 0, SYSCALLS["socketpair"]))
    ins.append((_JEQ_K, "clone", 0, SYSCALLS["clone"]))
    ins.append((_JEQ_K, "enosys", 0, SYSCALLS["clone3"]))
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    labels = {"deny": len(ins)}
    ins.append((_RET_K, 0, 0, deny))
    labels["enosys"] = len(ins)
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS))
    labels["unsupported"] = len(ins)
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EOPNOTSUPP))
    labels["socketpair"] = len(ins)
    ins.append((_LD_W_ABS, 0, 0, _OFF_ARG0))
    ins.append((_JEQ_K, 0, "clone_deny", socket.AF_UNIX))
    ins.append((_LD_W_ABS, 0, 0, _OFF_ARG1))
    ins.append((_AND_K, 0, 0, _TYPE_MASK))
    ins.append((_JEQ_K, "allow", 0, socket.SOCK_STREAM))
    ins.append((_JEQ_K, "allow", "clone_deny", socket.SOCK_SEQPACKET))
    labels["clone"] = len(ins)
    ins.append((_LD_W_ABS, 0, 0, _OFF_ARG0))
    ins.append((_JSET_K, "clone_deny", 0, NAMESPACE_FLAGS))
    if no_fork:
        ins.append((_JSET_K, 0, "clone_deny", CLONE_THREAD))
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    labels["clone_deny"] = len(ins)  # also the socketpair block's denial (jumps only go forward)
    ins.append((_RET_K, 0, 0, deny))
    labels["allow"] = len(ins)
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    out: list[tuple[int, int, int, int]] = []
    for i, (code, jt, jf, k) in enumerate(ins):
        def rel(target: object) -> int:
            if isinstance(target, str):
                off = labels[target] - i - 1  # noqa: B023 - rel is called in this iteration only
                if not 0 <= off < 256:
                    raise AssertionError(f"seccomp jump to {target} out of range ({off})")
                return off
            return int(target)  # type: ignore[call-overload]
        out.append((code, rel(jt), rel(jf), k))
    return out


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(no_fork: bool, host_fs_writable: bool) -> int:
    """Install the filter on the calling thread (no_new_privs must already be set). Returns its length.

    `host_fs_writable`: whether chmod/utime may stay allowed because the only writable filesystems the process
    can reach are its own (tier full's private root); False elsewhere."""
    prog = _program(no_fork, host_fs_writable)
    raw = b"".join(struct.pack("<HBBI", code, jt, jf, k) for code, jt, jf, k in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    check(LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "prctl(PR_SET_SECCOMP)")
    return len(prog)
