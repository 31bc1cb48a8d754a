"""libc through ctypes, and the syscall numbers of the architectures the sandbox supports (x86_64, aarch64).

Why raw syscalls: Landlock, seccomp, pidfd and clone-with-namespaces have no wrapper in Python's standard
library, and a compiled extension or a third-party package would be one more thing to build on every node.
"""

from __future__ import annotations

import ctypes
import os
import platform

LIBC = ctypes.CDLL(None, use_errno=True)
# The same library, but calls keep the GIL: needed around clone(), where the child must not find the GIL released
# by a thread that does not exist in it.
LIBC_GIL = ctypes.PyDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long
LIBC_GIL.syscall.restype = ctypes.c_long

MACHINE = platform.machine()

# name -> number, per architecture. Only what the sandbox uses or denies.
_X86_64: dict[str, int] = {
    "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "clone3": 435,
    "socket": 41, "socketpair": 53, "ptrace": 101, "syslog": 103, "personality": 135, "uselib": 134,
    "modify_ldt": 154, "pivot_root": 155, "vhangup": 153, "adjtimex": 159, "chroot": 161, "acct": 163,
    "settimeofday": 164, "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169,
    "sethostname": 170, "setdomainname": 171, "iopl": 172, "ioperm": 173, "init_module": 175, "delete_module": 176,
    "quotactl": 179, "nfsservctl": 180, "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246,
    "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "seccomp": 317,
    "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "pidfd_send_signal": 424, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434, "pidfd_getfd": 438, "mount_setattr": 442,
    "quotactl_fd": 443, "landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
    "capset": 126, "connect": 42, "bind": 49, "listen": 50,
    "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "fchown": 93, "lchown": 94,
    "fchownat": 260, "utime": 132, "utimes": 235, "futimesat": 261, "utimensat": 280,
    "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "getxattr": 191, "lgetxattr": 192, "fgetxattr": 193,
    "listxattr": 194, "llistxattr": 195, "flistxattr": 196, "removexattr": 197, "lremovexattr": 198,
    "fremovexattr": 199, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465, "removexattrat": 466,
    "inotify_init": 253, "inotify_add_watch": 254, "inotify_init1": 294, "fanotify_init": 300, "fanotify_mark": 301,
}
_AARCH64: dict[str, int] = {
    "clone": 220, "execve": 221, "execveat": 281, "clone3": 435,
    "socket": 198, "socketpair": 199, "ptrace": 117, "syslog": 116, "personality": 92,
    "pivot_root": 41, "vhangup": 58, "adjtimex": 171, "chroot": 51, "acct": 89,
    "settimeofday": 170, "mount": 40, "umount2": 39, "swapon": 224, "swapoff": 225, "reboot": 142,
    "sethostname": 161, "setdomainname": 162, "init_module": 105, "delete_module": 106,
    "quotactl": 60, "nfsservctl": 42, "lookup_dcookie": 18, "clock_settime": 112, "kexec_load": 104,
    "add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "perf_event_open": 241,
    "name_to_handle_at": 264, "open_by_handle_at": 265, "clock_adjtime": 266, "setns": 268,
    "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "finit_module": 273, "seccomp": 277,
    "kexec_file_load": 294, "bpf": 280, "userfaultfd": 282, "pidfd_send_signal": 424, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434, "pidfd_getfd": 438, "mount_setattr": 442,
    "quotactl_fd": 443, "landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
    "capset": 91, "connect": 203, "bind": 200, "listen": 201,
    "fchmod": 52, "fchmodat": 53, "fchmodat2": 452, "fchown": 55, "fchownat": 54, "utimensat": 88,
    "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "getxattr": 8, "lgetxattr": 9, "fgetxattr": 10,
    "listxattr": 11, "llistxattr": 12, "flistxattr": 13, "removexattr": 14, "lremovexattr": 15,
    "fremovexattr": 16, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465, "removexattrat": 466,
    "inotify_init1": 26, "inotify_add_watch": 27, "fanotify_init": 262, "fanotify_mark": 263,
}
# AUDIT_ARCH_* values seccomp reports in seccomp_data.arch.
AUDIT_ARCH: dict[str, int] = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SYSCALLS: dict[str, int] | None = {"x86_64": _X86_64, "aarch64": _AARCH64}.get(MACHINE)


def nr(name: str) -> int:
    """The syscall number of `name` on this machine; an error that names the architecture when unsupported."""
    if SYSCALLS is None:
        raise OSError(f"the sandbox's raw syscalls support x86_64 and aarch64, not {MACHINE}")
    return SYSCALLS[name]


def syscall(name: str, *args: int | None | ctypes._SimpleCData | ctypes._Pointer) -> int:
    """Call syscall `name`; raise OSError with errno on failure, return the result otherwise."""
    res = LIBC.syscall(ctypes.c_long(nr(name)), *args)
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return int(res)


def check(res: int, what: str) -> int:
    """Raise OSError(errno) when a libc call returned -1."""
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return res
