"""codevl sandbox: run untrusted, model-written Python on images, isolated, persistent per trajectory, fast.

    from sandbox import SandboxConfig, SandboxPool
    pool = SandboxPool(SandboxConfig())
    async with pool.session(images={"image_clue_0": pil_image}) as s:
        result = await s.run("crop = image_clue_0.crop((0, 0, 64, 64)); show(crop)", timeout=20)
    # result.status / stdout / stderr / error / images (with traced regions) / ops / duration_s

How it works: a warm parent process (imported NumPy, Pillow, OpenCV, scikit-image, matplotlib; threads pinned to
1; started as `python -I` with a scrubbed environment, so no trainer secret reaches a session) forks one process
per session with clone(CLONE_NEW*), a few kept forked ahead of demand (`prespawn`); `sandbox.launcher` owns them
from fork to reaping. In tier `full` (the default) each session process gets new user, PID, network, mount, IPC,
UTS and cgroup namespaces; where the trainer is root, a host uid/gid of its own that owns nothing on the host
(`session_uid_base`; uid 0 inside its namespace) and no supplementary groups; a minimal root built with
pivot_root (read-only copies of the system library paths and the warm parent's own `sys.path`, device nodes, a
fresh /proc, size-limited tmpfs /tmp (scratch, working directory) and /dev/shm: no other host path exists); its own
pids cgroup where the machine allows and RLIMIT_NPROC (enforced: the uid is not root); rlimits (address space, CPU,
file size, open files, no core dumps); no capabilities (bounding set empty, no_new_privs); Landlock (read-only
system and Python paths, read-write scratch only, no TCP bind/connect, signals and abstract sockets scoped to the
session) and a seccomp filter (no socket(), connect(), bind() or listen(): UNIX socketpairs only; no chown,
inotify, fanotify; extended attributes unsupported; no ptrace/mount/unshare/setns/bpf/io_uring/keyrings/...).
Input images arrive as sealed memfds mapped read-only; code and results travel over the session's own UNIX socket
(JSON + size-checked raw pixels, never pickle; every result frame checked field by field and numbered by block, so
that a forged or malformed frame kills the session and returns `crashed`); a watchdog thread SIGKILLs a session
through its pidfd at its hard deadline; after every block, every other process in the session's PID namespace is
killed. Child processes are allowed only where a process cap holds; in the weaker tiers and with
allow_subprocesses=False the session runs in no-fork mode (seccomp denies fork/exec; threads work). `Layers` says
what each session really has.

Protected against (tests/sandbox/ runs each attack): reading host files (/etc/shadow, ~/.ssh, the repository, the
trainer's /proc/<pid>/environ and sys.path; the trainer's environment variables are not inherited) and `stat` of
them; writing outside the scratch directory; changing host files' mode, owner or times; extended attributes as a
channel between sessions; connect() to host UNIX sockets; inotify on host directories; any network; signalling or
ptracing the trainer, the pool or other sessions (`kill -1` included); fork bombs (pids cgroup or RLIMIT_NPROC on
the session's uid, or no-fork mode; everything killed with the session); memory bombs (RLIMIT_AS -> status
memory); disk filling (file size limit, size-limited tmpfs); runaway output (status output_limit) and images (count
and exact pixel caps); malformed, forged or early result frames (status crashed); infinite loops, including ones
that catch the timeout exception (SIGKILL at the hard deadline -> status timeout); segfaults, sys.exit/os._exit,
clearing globals, monkeypatching builtins (restored before every block); threads and setsid children left running
(children killed after each block; threads die with the session). A dead or killed session never returns a stale
result: its process is never reused.

NOT protected against: kernel exploits (this is not a VM: namespaces, Landlock and seccomp share the host kernel;
use gVisor/Firecracker for hostile adversaries); CPU contention between sessions (no cgroup CPU quota: a busy
session slows its neighbours until its timeout); memory use beyond RLIMIT_AS's view (the tmpfs sizes bound scratch
files; there is no memory cgroup); output written straight to file descriptors 1/2 (discarded, not captured);
reading the read-only paths a session is given (/usr, /etc/passwd, the Python installation); machine-wide kernel
limits (open files, pids, socket buffer and tmpfs memory; per-uid quotas are each session's own, but two pools on
one host share the uid range unless their session_uid_base differ); tampering with the sandbox's own in-process
helpers (the operation trace and the capture hooks run in the same interpreter as the code, so code that
deliberately forges them can make the trace lie; rewards should treat the trace as evidence from a cooperative
program, not as proof). With a non-root trainer, sessions run as the trainer's uid (the private root still hides
the host's tree) and share its per-uid quotas. In tier `landlock` (no user namespaces) there is no private root:
`stat` reveals the existence, size and mode of any path, other processes' /proc entries are denied by Landlock, the
scratch directory lives on the host filesystem (limited per file, not in total), sessions switch to their own uid
only where the interpreter's files are readable by others, seccomp also denies chmod and utime, and child
processes are forbidden; tier `minimal` does NOT confine the filesystem at all. The operation trace is best
effort: see `sandbox.trace` for what it cannot see.
"""

from sandbox.config import SandboxConfig, Tier
from sandbox.errors import SandboxBusyError, SandboxClosedError, SandboxError, SandboxUnavailableError
from sandbox.isolation import Layers
from sandbox.pool import SandboxPool
from sandbox.result import (
    CORE_OPS,
    ORIENTATION_OPS,
    CapturedImage,
    ErrorInfo,
    ExecResult,
    ExecStatus,
    ImageRegion,
    OpRecord,
)
from sandbox.session import SandboxSession
from sandbox.sync import SyncSession

__all__ = [
    "CORE_OPS", "ORIENTATION_OPS", "CapturedImage", "ErrorInfo", "ExecResult", "ExecStatus", "ImageRegion", "Layers",
    "OpRecord", "SandboxBusyError", "SandboxClosedError", "SandboxConfig", "SandboxError", "SandboxPool",
    "SandboxSession", "SandboxUnavailableError", "SyncSession", "Tier",
]
