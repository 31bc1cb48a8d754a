"""Turning a freshly forked session process into a sandbox, and reporting the layers it really got.

Order matters. Tier full: the host paths to expose are opened while the process still has the warm parent's
credentials; it then switches to uid/gid 0 of its user namespace, which the warm parent mapped to the session's
own unprivileged host ids, and builds its minimal root with pivot_root (`linux/rootfs.py`), which needs the
capabilities the new user namespace grants. Tiers without namespaces switch to the session's host uid directly
where the trainer is root and the interpreter's files are readable by others. Then rlimits, closing inherited
descriptors, dropping every capability and no_new_privs; then Landlock; seccomp last (it denies mount, unshare
which the earlier steps use). Every step that the tier requires must succeed: a failure raises,
the process exits, and the pool reports the spawn as failed (fail closed).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.linux import capabilities, landlock, mounts, rlimits, rootfs, seccomp

SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/ld.so.conf",
                     "/etc/ld.so.conf.d", "/etc/localtime", "/etc/fonts", "/etc/passwd", "/etc/group",
                     "/etc/nsswitch.conf", "/etc/mime.types", "/usr/share", "/dev/urandom", "/dev/random",
                     "/dev/zero", "/dev/full")


@dataclass
class Layers:
    """What one session process really has (measured inside it after setup, not assumed from the config)."""

    tier: str
    namespaces: list[str] = field(default_factory=list)  # new namespaces: user, pid, net, mnt, ipc, uts, cgroup
    private_tmp: bool = False  # size-limited tmpfs on /tmp and /dev/shm
    private_root: bool = False  # pivot_root into a minimal read-only root: no other host path exists
    host_uid: int = -1  # the host uid the session runs as (-1: unknown); never 0
    fresh_proc: bool = False
    rlimits: list[str] = field(default_factory=list)
    capabilities_dropped: bool = False
    no_new_privs: bool = False
    landlock_abi: int = 0
    landlock_fs: bool = False
    landlock_net: bool = False
    landlock_scope: bool = False
    seccomp: bool = False
    no_fork: bool = False
    pids_cgroup: bool = False
    scratch: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Layers:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def summary(self) -> str:
        parts = [f"tier {self.tier}"]
        if self.namespaces:
            parts.append("namespaces " + "+".join(self.namespaces))
        if self.private_root:
            parts.append("private root")
        if self.private_tmp:
            parts.append("tmpfs /tmp,/dev/shm")
        if self.host_uid >= 0:
            parts.append(f"host uid {self.host_uid}")
        if self.fresh_proc:
            parts.append("fresh /proc")
        if self.landlock_fs:
            ll = ["fs"] + (["tcp"] if self.landlock_net else []) + (["signals"] if self.landlock_scope else [])
            parts.append(f"landlock v{self.landlock_abi} ({','.join(ll)})")
        if self.seccomp:
            parts.append("seccomp" + (" no-fork" if self.no_fork else ""))
        if self.pids_cgroup:
            parts.append("pids cgroup")
        if self.rlimits:
            parts.append("rlimits " + ",".join(self.rlimits))
        if self.capabilities_dropped:
            parts.append("no capabilities")
        return "; ".join(parts)


def missing_layers(required_tier: str, got: Layers, abi_needed: int = 1) -> list[str]:
    """The layers a tier requires that `got` lacks (empty: the session is as isolated as configured)."""
    need: list[str] = []
    if required_tier == "full":
        for ns in ("user", "pid", "net", "mnt", "ipc"):
            if ns not in got.namespaces:
                need.append(f"{ns} namespace")
        if not got.private_tmp:
            need.append("private tmpfs")
        if not got.private_root:
            need.append("private root (pivot_root)")
        if not got.fresh_proc:
            need.append("fresh /proc")
    if required_tier in ("full", "landlock"):
        if not got.landlock_fs:
            need.append("Landlock filesystem rules")
        if not got.landlock_net:
            need.append("Landlock TCP rules (ABI >= 4, Linux >= 6.7)")
        if required_tier == "landlock" and not got.landlock_scope:
            need.append("Landlock signal scoping (ABI >= 6, Linux >= 6.12)")
    if not got.seccomp:
        need.append("seccomp filter")
    if not got.capabilities_dropped:
        need.append("dropped capabilities")
    if not got.no_new_privs:
        need.append("no_new_privs")
    if len(got.rlimits) < 5:
        need.append("rlimits")
    if required_tier == "full" and got.host_uid <= 0:
        need.append("an unprivileged host uid (the session would act as host root)" if got.host_uid == 0 else
                    "a known host uid")
    return need


def python_read_paths(repo_root: str) -> list[str]:
    """Read-only paths the interpreter needs: its prefixes and import paths (not the repository itself)."""
    out = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
           os.path.dirname(os.path.realpath(sys.executable))}
    for p in sys.path:
        if p and os.path.isdir(p) and os.path.realpath(p) != os.path.realpath(repo_root):
            out.add(p)
    # a venv inside the repository is fine; the repository root is not
    return sorted(p for p in out if os.path.realpath(p) != os.path.realpath(repo_root))


def _status_fields() -> dict[str, str]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _ns_ids() -> dict[str, str]:
    ids = {}
    for ns in ("user", "pid", "net", "mnt", "ipc", "uts", "cgroup"):
        try:
            ids[ns] = os.readlink(f"/proc/self/ns/{ns}")
        except OSError:
            pass
    return ids


def parent_namespace_ids() -> dict[str, str]:
    """The warm parent's namespace ids (sessions compare theirs against these)."""
    return _ns_ids()


def close_inherited_fds(keep: int) -> None:
    """Close every descriptor but `keep`; 0/1/2 point to /dev/null."""
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)


def _switch_uid(uid: int, gid: int) -> None:
    """Take the session's host uid/gid for good (no supplementary groups), then re-arm the parent-death signal,
    which the kernel clears on any change of credentials."""
    if hasattr(os, "setgroups") and os.getgroups():
        os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    capabilities.set_parent_death_signal(signal.SIGKILL)


def host_uid() -> int:
    """The host uid this process runs as, from /proc/self/uid_map (-1 when it cannot be read)."""
    uid = os.getuid()
    try:
        with open("/proc/self/uid_map") as f:
            for line in f:
                inside, outside, count = (int(v) for v in line.split())
                if inside <= uid < inside + count:
                    return outside + uid - inside
    except (OSError, ValueError):
        pass
    return -1


def enter(spec: dict[str, Any], session_fd: int) -> Layers:
    """Apply the spec's layers to this (single-threaded, just forked) process. Raises on any required failure."""
    tier = spec["tier"]
    layers = Layers(tier=tier)
    capabilities.set_parent_death_signal(signal.SIGKILL)
    os.setsid()  # its own session and process group: kill(0, ...) reaches nothing else
    reads = list(SYSTEM_READ_PATHS) + list(spec["read_paths"])
    if tier == "full":
        # In its own user namespace the warm parent mapped uid/gid 0 to the session's unprivileged host ids; the
        # process still has the warm parent's host credentials until it switches, so the host paths to expose are
        # opened first (a Python under /root stays reachable), then it becomes the mapped ids and builds its root.
        mounts.make_private()
        plan = rootfs.plan(reads)
        sources = rootfs.open_sources(plan)
        _switch_uid(0, 0)
        rootfs.build(sources, plan.links, spec["scratch_bytes"], spec["shm_bytes"])
        layers.private_tmp = layers.fresh_proc = layers.private_root = True
        scratch = "/tmp"
        try:
            socket.sethostname("sandbox")
        except OSError:
            pass
    else:
        scratch = spec["scratch_dir"]
        if spec.get("uid") is not None:  # no user namespace: the trainer is root and may hand out its uid range
            capabilities.drop_bounding_set()  # while CAP_SETPCAP is still there
            _switch_uid(int(spec["uid"]), int(spec["gid"]))
    os.chdir(scratch)
    layers.scratch = scratch
    layers.host_uid = host_uid()
    os.environ.clear()
    os.environ.update({"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                       **spec.get("env", {})})
    import tempfile

    tempfile.tempdir = scratch
    close_inherited_fds(session_fd)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing past RLIMIT_FSIZE raises OSError(EFBIG) instead
    layers.rlimits = rlimits.apply(rlimits.Limits(
        address_space_bytes=spec["memory_bytes"], cpu_s=spec["cpu_s"], file_size_bytes=spec["file_bytes"],
        open_files=spec["open_files"], processes=spec["processes"] if tier == "full" else None))
    capabilities.set_no_new_privs()
    capabilities.drop_all()
    abi = landlock.abi_version()
    layers.landlock_abi = abi
    if tier in ("full", "landlock"):
        if abi < 1:
            raise OSError("Landlock is not available in this kernel")
        writes = [scratch, "/dev/null"]
        if tier == "full":
            reads.append("/proc")
            writes.append("/dev/shm")
        else:
            reads.append(f"/proc/{os.getpid()}")
        got = landlock.restrict(reads, writes, abi=abi)
        layers.landlock_fs, layers.landlock_net, layers.landlock_scope = got["fs"], got["net"], got["scope"]
    # fork only where the PID namespace contains the children and a process cap is enforced (see linux/cgroups.py)
    no_fork = not (tier == "full" and spec["allow_subprocesses"] and spec.get("process_cap", False))
    if not seccomp.available():
        raise OSError("seccomp: unsupported architecture")
    seccomp.install(no_fork, host_fs_writable=layers.private_root)
    layers.no_fork = no_fork
    # measure what we got
    st = _status_fields()
    layers.seccomp = st.get("Seccomp") == "2"
    try:
        with open("/proc/self/cgroup") as f:
            layers.pids_cgroup = any("codevl-" in line and "pids" in line.split(":")[1] or
                                     (line.startswith("0::") and "codevl-" in line) for line in f)
    except OSError:
        pass
    layers.no_new_privs = st.get("NoNewPrivs") == "1"
    layers.capabilities_dropped = int(st.get("CapEff", "1"), 16) == 0 and int(st.get("CapBnd", "1"), 16) == 0
    mine = _ns_ids()
    parent = spec.get("parent_ns", {})
    layers.namespaces = [ns for ns in ("user", "pid", "net", "mnt", "ipc", "uts", "cgroup")
                         if ns in mine and ns in parent and mine[ns] != parent[ns]]
    if layers.landlock_fs:
        try:
            os.listdir("/")
            layers.landlock_fs = False  # the rules did not take
        except PermissionError:
            pass
    return layers
