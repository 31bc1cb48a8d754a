"""Dropping every capability for good: bounding set, ambient, effective/permitted/inheritable, no_new_privs.

With the bounding set empty, not even an execve of a set-uid or file-capability binary, nor being uid 0 inside the
session's user namespace, can bring a capability back.
"""

from __future__ import annotations

import ctypes

from sandbox.linux.syscalls import LIBC, check, nr

PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def drop_bounding_set() -> None:
    """Empty the bounding set (needs CAP_SETPCAP: before a switch to a non-root uid, which loses it)."""
    for cap in range(_last_cap() + 1):
        LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: the caller checks CapBnd


def drop_all() -> None:
    """Drop every capability (raises OSError if the kernel refuses)."""
    drop_bounding_set()
    LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    check(LIBC.syscall(ctypes.c_long(nr("capset")), ctypes.byref(hdr), ctypes.byref(data)), "capset")


def set_no_new_privs() -> None:
    check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def set_parent_death_signal(sig: int) -> None:
    check(LIBC.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def effective_caps() -> int:
    """The effective capability mask, from /proc/self/status (0 when all are dropped)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return -1


def bounding_caps() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return -1
