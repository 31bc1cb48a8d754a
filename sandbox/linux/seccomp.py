"""A seccomp-BPF filter: the syscalls model code has no business making, denied with EPERM.

Denied: sockets other than AF_UNIX (so no TCP/UDP/raw/netlink/packet at all, whatever the network namespace),
ptrace and cross-process memory access, mount and every new-mount-API call, namespace creation (unshare, setns,
clone with CLONE_NEW*), bpf, perf_event_open, io_uring (it would bypass this filter), userfaultfd, keyrings,
kernel modules, kexec, reboot, swap, clock setting, chroot/pivot_root, handle-based opens, pidfd_getfd, and the
x32 ABI. With `no_fork`, also fork/vfork/execve/execveat and clone without CLONE_THREAD (threads still work).
`clone3` returns ENOSYS so that libc falls back to `clone`, whose flags this filter can inspect.
Everything else is allowed: the filter is a deny-list on top of Landlock and the namespaces, not the only wall.
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

_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0 = 16  # low 32 bits of args[0] (little-endian)

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


def available() -> bool:
    """Whether this architecture's syscall table is known (the filter itself exists on every modern kernel)."""
    return SYSCALLS is not None and MACHINE in AUDIT_ARCH


def _program(no_fork: bool) -> list[tuple[int, int, int, int]]:
    assert SYSCALLS is not None
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    ins: list[tuple[int, object, object, int]] = []  # (code, jt label/int, jf label/int, k)
    ins.append((_LD_W_ABS, 0, 0, _OFF_ARCH))
    ins.append((_JEQ_K, 1, 0, AUDIT_ARCH[MACHINE]))
    ins.append((_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS))
    ins.append((_LD_W_ABS, 0, 0, _OFF_NR))
    if MACHINE == "x86_64":
        ins.append((_JGE_K, "deny", 0, X32_SYSCALL_BIT))
    names = [n for n in DENIED if n in SYSCALLS] + ([n for n in NO_FORK_DENIED if n in SYSCALLS] if no_fork else [])
    for name in names:
        ins.append((_JEQ_K, "deny", 0, SYSCALLS[name]))
    ins.append((_JEQ_K, "socket", 0, SYSCALLS["socket"]))
    ins.append((_JEQ_K, "socket", 0, SYSCALLS["socketpair"]))
    ins.append((_JEQ_K, "clone", 0, SYSCALLS["clone"]))
    ins.append((_JEQ_K, "enosys", 0, SYSCALLS["clone3"]))
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    labels = {"deny": len(ins)}
    ins.append((_RET_K, 0, 0, deny))
    labels["enosys"] = len(ins)
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS))
    labels["socket"] = len(ins)
    ins.append((_LD_W_ABS, 0, 0, _OFF_ARG0))
    ins.append((_JEQ_K, 0, 1, socket.AF_UNIX))
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM))
    labels["clone"] = len(ins)
    ins.append((_LD_W_ABS, 0, 0, _OFF_ARG0))
    ins.append((_JSET_K, "clone_deny", 0, NAMESPACE_FLAGS))
    if no_fork:
        ins.append((_JSET_K, 0, "clone_deny", CLONE_THREAD))
    ins.append((_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    labels["clone_deny"] = len(ins)
    ins.append((_RET_K, 0, 0, deny))
    out: list[tuple[int, int, int, int]] = []
    for i, (code, jt, jf, k) in enumerate(ins):
        def rel(target: object) -> int:
            if isinstance(target, str):
                off = labels[target] - i - 1  # noqa: B023 - rel is called in this iteration only
                assert 0 <= off < 256, "seccomp jump out of range"
                return off
            return int(target)  # type: ignore[call-overload]
        out.append((code, rel(jt), rel(jf), k))
    return out


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(no_fork: bool) -> int:
    """Install the filter on the calling thread (no_new_privs must already be set). Returns its length."""
    prog = _program(no_fork)
    raw = b"".join(struct.pack("<HBBI", code, jt, jf, k) for code, jt, jf, k in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    check(LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "prctl(PR_SET_SECCOMP)")
    return len(prog)
