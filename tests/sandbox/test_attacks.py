"""Adversarial code, run for real. Each test runs an attack in its own session and documents its fate; the
`attack` fixture then checks that a neighbour session kept its state and works, that the pool still gives
working sessions, that no stray process is left under the warm parent, and that nothing was written outside
the attacker's scratch directory."""

from __future__ import annotations

import ast
import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox import ExecStatus, SandboxConfig, SandboxPool

from tests.sandbox.conftest import Attack, SMALL, strays

os.environ["CODEVL_SANDBOX_TEST_SECRET"] = "trainer-secret-value"  # must never be visible inside a session


# ---- time ----------------------------------------------------------------------------------------------------


def test_soft_timeout_stops_an_infinite_loop(attack: Attack) -> None:
    t0 = time.monotonic()
    _, looped, after = attack(["x = 1", "print('before')\nwhile True: pass", "print(x)"], timeout=0.5)
    assert time.monotonic() - t0 < 6
    assert looped.status is ExecStatus.TIMEOUT and 0.5 <= looped.duration_s < 1.5
    # the timed-out process is never reused: the next block runs in a fresh interpreter
    assert after.status is ExecStatus.ERROR and after.error.type == "NameError" and "fresh interpreter" in after.notes[0]


def test_hard_timeout_kills_code_that_catches_the_timeout(attack: Attack) -> None:
    t0 = time.monotonic()
    code = ("import time\ncaught = 0\nwhile True:\n    try:\n        while True: time.sleep(0.01)\n"
            "    except BaseException as e:\n        caught += 1\n        print('caught', type(e).__name__)")
    r = attack(code, timeout=0.5)
    assert r.status is ExecStatus.TIMEOUT and any("killed after 1 s" in n for n in r.notes)
    assert r.stdout == "", "the output of a hard-killed block is lost (documented)"
    assert time.monotonic() - t0 < 5


def test_blocking_syscall_and_sleep_are_killed(attack: Attack) -> None:
    r = attack("import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(100)", timeout=0.4)
    assert r.status is ExecStatus.TIMEOUT


# ---- processes -----------------------------------------------------------------------------------------------


# fork bombs: tests/sandbox/test_host_holes.py runs one in every setup (pids cgroup, RLIMIT_NPROC only, no-fork)


def test_threads_and_setsid_children_left_running(attack: Attack, pool: SandboxPool) -> None:
    code = ("import os, subprocess, threading, time\n"
            "subprocess.Popen(['sleep', '100'], start_new_session=True)\n"
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(100)\n    os._exit(0)\n"
            "threading.Thread(target=lambda: time.sleep(100), daemon=True).start()\n"
            "time.sleep(0.2)")
    if pool.layers is not None and pool.layers.no_fork:  # no pids cgroup for root (seen on a Firecracker VM)
        with pool.sync_session() as s:
            r = s.run(code)
            assert r.status is ExecStatus.ERROR and r.error is not None and r.error.type == "PermissionError"
        pytest.skip("no-fork mode here: the children cannot be started, so there is nothing left to clean up")
    _, r = attack([code, "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"])
    assert r.ok and r.stdout == "[1]\n", "after the block only the session's own process is left in its namespace"
    with pool.sync_session() as s:
        r = s.run(code)
        assert r.ok and any("child process(es)" in n and "killed" in n for n in r.notes)
        assert any("thread(s)" in n for n in r.notes)
        assert s.run("print(threading.active_count())").stdout == "2\n"  # the thread lives on in the session


# ---- memory, disk, output ------------------------------------------------------------------------------------


def test_30_gb_allocation(attack: Attack) -> None:
    r = attack("a = bytearray(30 * 2**30)")
    assert r.status is ExecStatus.MEMORY
    r = attack("import numpy as np\na = np.ones(30 * 2**30, np.uint8)")
    assert r.status is ExecStatus.MEMORY


def test_50_gb_file(attack: Attack) -> None:
    r = attack("f = open('/tmp/big', 'wb')\nf.seek(50 * 2**30)\nf.write(b'x')\nf.close()")
    assert r.status is ExecStatus.ERROR and r.error is not None and "File too large" in r.error.message


def test_filling_scratch_and_dev_shm(attack: Attack) -> None:
    fill = ("import os\nblock = b'\\0' * 2**20\nn = 0\ntry:\n    for i in range(1000):\n"
            "        with open(f'{d}/f{{i}}', 'wb') as f:\n            for _ in range(8): f.write(block); n += 1\n"
            "except OSError as e:\n    print(e.errno, n)\n")
    rs = attack([fill.format(d="/tmp"), fill.format(d="/dev/shm"), "print(os.statvfs('/tmp').f_bavail)"])
    assert [r.status for r in rs] == [ExecStatus.OK] * 3  # ENOSPC is an OSError the code sees; the session lives
    assert rs[0].stdout.startswith("28 ") and rs[1].stdout.startswith("28 ") and rs[2].stdout == "0\n"
    # a fresh session has an empty scratch again (checked by the fixture's new session too)


def test_filling_scratch_reports_enospc(pool: SandboxPool) -> None:
    with pool.sync_session() as s:
        r = s.run("import errno\nblock = b'\\0' * 2**20\ntry:\n    for i in range(1000):\n"
                  "        with open(f'/tmp/f{i}', 'wb') as f:\n            for _ in range(8): f.write(block)\n"
                  "except OSError as e:\n    print(errno.errorcode[e.errno], i * 8 // 8)")
        assert r.ok and r.stdout.startswith("ENOSPC") and int(r.stdout.split()[1]) <= 64 // 8 + 1
        r = s.run("try:\n    for i in range(4): open(f'/dev/shm/x{i}', 'wb').write(b'\\0' * 8 * 2**20)\n"
                  "except OSError as e:\n    print(errno.errorcode[e.errno])")
        assert r.stdout == "ENOSPC\n"


def test_1_gb_of_output(attack: Attack) -> None:
    t0 = time.monotonic()
    r = attack("line = 'x' * 10**6\nfor _ in range(1000): print(line)")
    assert r.status is ExecStatus.OUTPUT_LIMIT and time.monotonic() - t0 < 10
    r = attack("import sys\nline = 'y' * 10**6\nfor _ in range(1000):\n    try:\n        sys.stdout.write(line)\n"
               "    except BaseException:\n        pass")
    assert r.status is ExecStatus.OUTPUT_LIMIT
    r = attack("import os\nfor _ in range(1000): os.write(1, b'z' * 10**6)\nprint('raw fd writes go nowhere')")
    assert r.ok and r.stdout == "raw fd writes go nowhere\n"


def test_100000_by_100000_image(attack: Attack) -> None:
    r = attack("import numpy as np\nshow(np.zeros((100000, 100000, 3), np.uint8))")
    assert r.status is ExecStatus.MEMORY
    r = attack("from PIL import Image\nim = Image.new('L', (100000, 100000))")
    assert r.status is ExecStatus.MEMORY


# ---- crashes and exits ---------------------------------------------------------------------------------------


def test_segfault_via_ctypes(attack: Attack) -> None:
    r = attack("import ctypes\nctypes.string_at(0)")
    assert r.status is ExecStatus.CRASHED and any("SIGSEGV" in n for n in r.notes)


def test_sys_exit_and_os_exit(attack: Attack) -> None:
    e1, e2, r = attack(["import sys\nsys.exit(0)", "raise SystemExit('bye')", "print('still here')"])
    assert e1.status is e2.status is ExecStatus.ERROR and e1.error.type == "SystemExit"
    assert r.ok and r.stdout == "still here\n"
    r = attack("import os\nos._exit(0)")
    assert r.status is ExecStatus.CRASHED


# ---- files ---------------------------------------------------------------------------------------------------


def test_reading_host_files(attack: Attack, tmp_path: Path) -> None:
    secret = Path("/var/tmp") / f"codevl-sandbox-secret-{os.getpid()}"
    secret.write_text("host secret")
    try:
        r = attack(f"""
import os
def probe(path):
    try:
        with open(path, 'rb') as f:
            return 'READ ' + repr(f.read(20))
    except OSError as e:
        return type(e).__name__
for p in ['/etc/shadow', '/root/.ssh/id_rsa', '/root/.bash_history', {str(secret)!r}, '/work/main/README.md',
          '/work/main/sandbox/pool.py', '/proc/{os.getpid()}/environ', '/proc/1/environ', '/etc/hostname']:
    print(p, probe(p))
for d in ['/root', '/root/.ssh', '/home', '/var/tmp', '/work']:
    try:
        os.listdir(d); print(d, 'LISTED')
    except OSError as e:
        print(d, type(e).__name__)
print('env', sorted(os.environ))
""")
    finally:
        secret.unlink()
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    for path, verdict in lines.items():
        if path == "env":
            assert "CODEVL_SANDBOX_TEST_SECRET" not in verdict and "HF_HUB_OFFLINE" not in verdict
        elif path == "/proc/1/environ":  # its own PID 1: after switching to its unprivileged uid the process is
            assert "trainer-secret" not in verdict  # not dumpable, so even this is unreadable in tier full
        else:
            assert not verdict.startswith(("READ", "LISTED")), f"{path}: {verdict}"


def test_writing_outside_scratch(attack: Attack) -> None:
    targets = ("/work/main/pwned", "/root/pwned", "/var/tmp/pwned", "/etc/pwned", "/dev/pwned", "/usr/pwned")
    code = "import os\nfor p in {targets!r}:\n    try:\n        open(p, 'w').write('x'); print(p, 'WROTE')\n" \
           "    except OSError as e:\n        print(p, type(e).__name__)\n" \
           "open('/tmp/codevl-inside-marker', 'w').write('inside')\nprint(os.getcwd(), os.listdir('/tmp'))\n" \
           "try:\n    os.symlink('/etc/shadow', '/tmp/link'); print(open('/tmp/link').read())\n" \
           "except OSError as e:\n    print('symlink', type(e).__name__)"
    r = attack(code.format(targets=targets), host_paths=(*targets, "/tmp/codevl-inside-marker"))
    assert r.ok and "WROTE" not in r.stdout
    # the session's /tmp is its own scratch: the marker, plus only the read-only mountpoints of the interpreter's
    # own paths when the checkout or the venv lives under the host's /tmp
    listed = set(ast.literal_eval(r.stdout.split("/tmp ", 1)[1].splitlines()[0]))
    own = {Path(p).parts[2] for p in (sys.prefix, sys.base_prefix, str(Path(__file__).resolve()))
           if Path(p).parts[1:2] == ("tmp",) and len(Path(p).parts) > 2}
    assert "codevl-inside-marker" in listed and listed - {"codevl-inside-marker"} <= own
    assert "symlink PermissionError" in r.stdout or "symlink FileNotFoundError" in r.stdout  # no /etc/shadow in tier full


# ---- network -------------------------------------------------------------------------------------------------


def test_network_is_unreachable(attack: Attack) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    try:
        r = attack(f"""
import socket
def attempt(fn):
    try:
        fn(); return 'CONNECTED'
    except OSError as e:
        return type(e).__name__
print(attempt(lambda: socket.create_connection(('127.0.0.1', {port}), timeout=1)))
print(attempt(lambda: socket.create_connection(('1.1.1.1', 53), timeout=1)))
print(attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))))
print(attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM)))
print(attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)))
print(attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)))
a, b = socket.socketpair(); a.send(b'unix ok'); print(b.recv(10).decode())
""")
    finally:
        t.join()
        server.close()
    assert r.stdout.splitlines() == ["PermissionError"] * 6 + ["unix ok"]
    assert not accepted


# ---- signals and other processes -----------------------------------------------------------------------------


def test_killing_the_parent_the_pool_and_other_sessions(attack: Attack, pool: SandboxPool) -> None:
    z = pool.stats()["warm_parent_pid"]
    assert z is not None
    code = f"""
import os, signal
def attempt(fn):
    try:
        fn(); return 'sent'
    except OSError as e:
        return type(e).__name__
print('ppid', os.getppid())
print(attempt(lambda: os.kill({z}, signal.SIGKILL)))
print(attempt(lambda: os.kill({os.getpid()}, signal.SIGKILL)))
print(attempt(lambda: os.kill(-1, signal.SIGKILL)))
print(attempt(lambda: os.kill(0, signal.SIGKILL)))
print(attempt(lambda: os.killpg(os.getpgid(0), signal.SIGKILL)))
print('alive')
"""
    r = attack(code)
    assert r.ok and r.stdout.startswith("ppid 0\n") and r.stdout.endswith("alive\n")
    assert pool.stats()["warm_parent_alive"] and os.path.exists(f"/proc/{z}")


def test_ptrace_mount_unshare_are_denied(attack: Attack) -> None:
    r = attack("""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, call in [('ptrace', lambda: libc.ptrace(16, 1, 0, 0)), ('unshare', lambda: libc.unshare(0x10000000)),
                   ('mount', lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)),
                   ('setns', lambda: libc.setns(0, 0)), ('chroot', lambda: libc.chroot(b'/tmp'))]:
    res = call()
    print(name, res, os.strerror(ctypes.get_errno()) if res != 0 else 'OK')
""")
    for line in r.stdout.splitlines():
        assert " -1 " in line, line


def test_no_stray_processes_after_many_sessions(pool: SandboxPool) -> None:
    for _ in range(5):
        with pool.sync_session() as s:
            s.run("import subprocess\nsubprocess.Popen(['sleep', '30'])")
    assert not strays(pool)


def test_only_the_warm_parents_own_import_paths_are_readable() -> None:
    """The trainer's sys.path (PYTHONPATH, the directory `python -m` ran from, e.g. $HOME) is not granted: sessions
    read only what the warm parent itself imports from (it runs `python -I`)."""
    import sys

    private = Path("/var/tmp") / f"codevl-trainer-path-{os.getpid()}"
    private.mkdir()
    (private / "trainer_secret.py").write_text("TOKEN = 'trainer-only'\n")
    sys.path.insert(0, str(private))
    try:
        with SandboxPool(SandboxConfig(**{**SMALL, "prespawn": 0})) as pool, pool.sync_session() as s:
            r = s.run(f"import os\ntry:\n    print(open({str(private / 'trainer_secret.py')!r}).read())\n"
                      "except OSError as e:\n    print(type(e).__name__)\nimport json, fractions\nprint('stdlib ok')")
    finally:
        sys.path.remove(str(private))
        (private / "trainer_secret.py").unlink()
        private.rmdir()
    assert r.ok and "trainer-only" not in r.stdout and r.stdout.endswith("stdlib ok\n"), r.stdout
