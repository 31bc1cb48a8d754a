"""`SandboxConfig`: limits, concurrency, isolation tier, capture and text caps of a `SandboxPool`.

A pydantic model that rejects unknown keys, so RL / eval configs can embed it as their `sandbox:` section.
The defaults work on a stock Linux >= 6.7 machine (user namespaces, Landlock ABI >= 4, seccomp) and fail closed
elsewhere: a missing layer makes the pool refuse to start, with a message naming the setting to change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tier = Literal["full", "landlock", "minimal"]

TIER_ORDER: tuple[Tier, ...] = ("full", "landlock", "minimal")
TIER_LAYERS: dict[Tier, str] = {
    "full": "user/PID/network/mount/IPC/UTS/cgroup namespaces, an unprivileged host uid per session (where the "
            "trainer is root), a private pivot_root root of read-only binds, private tmpfs /tmp and /dev/shm, fresh "
            "/proc, Landlock (paths, TCP, signal scope), seccomp, rlimits, no capabilities",
    "landlock": "Landlock (paths, TCP, signal scope), seccomp, rlimits, no capabilities; no namespaces (shared "
                "/proc, scratch on the host filesystem); child processes forbidden",
    "minimal": "seccomp and rlimits only: NO filesystem confinement (the code can read what the trainer's user "
               "can read); child processes forbidden",
}


class SandboxConfig(BaseModel):
    """How the sandbox isolates, limits and captures. Sizes in MiB unless the name says otherwise."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    # isolation
    tier: Tier = Field("full", description="isolation tier required: full > landlock > minimal (see TIER_LAYERS)")
    allow_weaker: bool = Field(False, description="run on a weaker tier when the required one is unavailable "
                                                   "(otherwise the pool refuses to start: fail closed)")
    allow_subprocesses: bool = Field(True, description="let code fork/exec: only in tier full (the PID namespace "
                                                       "contains them) and where a process cap holds (pids cgroup, "
                                                       "or a non-root trainer); otherwise, or False: no-fork mode")
    session_uid_base: int = Field(62000, ge=1, lt=2**32 - 1 - 8192,
                                  description="where the trainer is root, each session process runs as its own host "
                                              "uid (and gid) from session_uid_base up (max_sessions + prespawn + 64 "
                                              "of them), uids that must own nothing on the host; a non-root trainer's "
                                              "sessions run as its own uid")
    pids_cgroup: bool = Field(True, description="cap each session's processes with its own pids cgroup where the "
                                                "machine allows; otherwise (or false) RLIMIT_NPROC on the session's "
                                                "unprivileged uid is the cap")
    # concurrency
    max_sessions: int = Field(64, ge=1, le=4096, description="sessions alive at once; session() waits for a slot")
    prespawn: int = Field(2, ge=0, le=256, description="session processes kept forked and isolated ahead of demand "
                                                        "(~12 MiB each), so opening a session only loads its images")
    session_wait_s: float = Field(600.0, gt=0, description="longest wait for a free slot before SandboxBusyError")
    # time
    timeout_s: float = Field(20.0, gt=0, description="default wall-clock limit of one run() (PyVision: 20 s)")
    kill_grace_s: float = Field(1.0, ge=0.05, description="after the soft timeout (an exception in the code), the "
                                                         "worker is SIGKILLed this much later if still running")
    start_timeout_s: float = Field(20.0, gt=0, description="deadline to fork a session and load its images")
    session_cpu_s: int = Field(900, ge=1, description="CPU seconds a session may use in total (RLIMIT_CPU)")
    # memory, files, processes
    memory_mb: int = Field(4096, ge=1024, description="address space of each session process (RLIMIT_AS); the "
                                                      "warm parent alone maps ~550 MiB")
    max_processes: int = Field(32, ge=1, description="processes + threads per session (RLIMIT_NPROC, tier full)")
    max_open_files: int = Field(256, ge=32)
    max_file_mb: int = Field(64, ge=1, description="largest file the code may write (RLIMIT_FSIZE)")
    scratch_mb: int = Field(256, ge=1, description="size of the private tmpfs /tmp (tier full)")
    shm_mb: int = Field(64, ge=1, description="size of the private tmpfs /dev/shm (tier full)")
    # text caps
    max_stdout_bytes: int = Field(16384, ge=256, description="stdout kept per run (head and tail; a note says so)")
    max_stderr_bytes: int = Field(8192, ge=256)
    max_output_mb: float = Field(8.0, gt=0, description="total text written in one run past which the worker is "
                                                        "killed (status output_limit)")
    max_value_repr_chars: int = Field(4000, ge=80, description="repr of the last expression, truncated")
    # image caps
    max_images: int = Field(16, ge=0, description="images captured per run; later ones are dropped with a note")
    max_image_pixels: int = Field(36_000_000, ge=1, description="larger captured images are downscaled (note)")
    image_encoding: Literal["raw", "png"] = Field("raw", description="how pixels cross the socket: raw (fast) or "
                                                                     "png (smaller, ~30x slower for a crop)")
    # operation trace
    trace: bool = Field(True, description="instrument Pillow/OpenCV/NumPy to record image operations")
    max_ops: int = Field(512, ge=0, description="op records kept per run")

    @model_validator(mode="after")
    def _check(self) -> SandboxConfig:
        if self.tier != "full" and self.allow_subprocesses and "allow_subprocesses" in self.model_fields_set:
            raise ValueError(f"allow_subprocesses=true needs tier=full (tier {self.tier} has no PID namespace to "
                             "contain child processes); set allow_subprocesses=false or tier=full")
        return self
