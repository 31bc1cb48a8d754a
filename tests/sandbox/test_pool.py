"""The pool: slots under concurrency, survival of session and warm-parent deaths, closing, cancellation, the
protocol's size checks, the layers each session reports, and failing closed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import time

import numpy as np
import pytest
from pydantic import ValidationError

from sandbox import ExecStatus, Layers, SandboxBusyError, SandboxClosedError, SandboxConfig, SandboxPool
from sandbox import wire
from sandbox.isolation import missing_layers
from sandbox.launcher import advice

from tests.sandbox.conftest import SMALL, descendants, noise_image, strays


def test_many_concurrent_episodes_wait_for_slots() -> None:
    with SandboxPool(SandboxConfig(**{**SMALL, "max_sessions": 3})) as pool:
        peak = 0

        async def episode(k: int) -> str:
            nonlocal peak
            async with pool.session(images={"image_clue_0": noise_image(seed=k)}) as s:
                peak = max(peak, pool.stats()["sessions_open"])
                await s.run(f"v = {k}")
                await asyncio.sleep(0.01)
                return (await s.run("print(v, image_clue_0.size)")).stdout

        async def main() -> list[str]:
            return await asyncio.wait_for(asyncio.gather(*(episode(k) for k in range(24))), 120)

        outs = asyncio.run(main())
        assert outs == [f"{k} (320, 200)\n" for k in range(24)] and peak <= 3
        assert pool.stats()["sessions_open"] == 0


def test_waiting_for_a_slot_has_a_deadline() -> None:
    with SandboxPool(SandboxConfig(**{**SMALL, "max_sessions": 1, "session_wait_s": 0.3})) as pool:
        with pool.sync_session():
            t0 = time.monotonic()
            with pytest.raises(SandboxBusyError):
                with pool.sync_session():
                    pass
            assert time.monotonic() - t0 < 2
        with pool.sync_session() as s:  # the slot is free again
            assert s.run("1").ok


def test_the_warm_parent_dying_is_survived() -> None:
    with SandboxPool(SandboxConfig(**SMALL)) as pool:
        with pool.sync_session(images={"image_clue_0": noise_image()}) as s:
            assert s.run("x = 1").ok
            old = pool.stats()["warm_parent_pid"]
            assert old is not None
            os.kill(old, signal.SIGKILL)
            deadline = time.monotonic() + 60  # generous: on a loaded machine the death is noticed late
            while pool.stats()["warm_parent_alive"] and time.monotonic() < deadline:
                time.sleep(0.01)
            r = s.run("print(image_clue_0.size)")  # its process died with the warm parent: restarted
            assert r.status is ExecStatus.CRASHED or r.ok
            r = s.run("print(image_clue_0.size)")
            assert r.ok and r.stdout == "(320, 200)\n" and pool.stats()["warm_parent_pid"] != old
        with pool.sync_session() as s2:
            assert s2.run("2 + 2").value_repr == "4"


def test_closing_the_pool_kills_running_blocks_and_leaves_nothing() -> None:
    pool = SandboxPool(SandboxConfig(**SMALL))
    z = pool.stats()["warm_parent_pid"]
    assert z is not None

    async def main() -> ExecResultLike:
        async with pool.session() as s:
            task = asyncio.create_task(s.run("import time\ntime.sleep(30)", timeout=60))
            await asyncio.sleep(0.3)
            pool.close()
            return await asyncio.wait_for(task, 10)

    r = asyncio.run(main())
    assert r.status is ExecStatus.KILLED
    assert not os.path.exists(f"/proc/{z}") and not descendants(z)
    with pytest.raises(SandboxClosedError):
        pool.session()
    pool.close()  # idempotent


ExecResultLike = object


def test_cancelling_a_run_kills_its_process_and_the_session_goes_on(pool: SandboxPool) -> None:
    async def main() -> tuple[str, int]:
        async with pool.session() as s:
            await s.run("x = 7")
            task = asyncio.create_task(s.run("import time\ntime.sleep(30)", timeout=60))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            r = await s.run("print('x' in globals())")
            return r.stdout, s.restarts

    assert asyncio.run(main()) == ("False\n", 1)
    assert not strays(pool)


def test_protocol_violations_from_inside_are_caught(pool: SandboxPool) -> None:
    find_fd = ("import os, stat\ndef is_sock(f):\n    try:\n        return stat.S_ISSOCK(os.fstat(f).st_mode)\n"
               "    except OSError:\n        return False\nfd = next(f for f in range(3, 256) if is_sock(f))\n")
    with pool.sync_session() as s:
        r = s.run(find_fd + "os.write(fd, b'garbage' * 100)")
        assert r.status is ExecStatus.CRASHED and any("protocol" in n for n in r.notes)
        r = s.run(find_fd + "import struct\nos.write(fd, struct.pack('<4sIQ', b'CVL1', 2**31, 2**40))")
        assert r.status is ExecStatus.CRASHED and any("over the limit" in n for n in r.notes)
        assert s.run("print('recovered')").stdout == "recovered\n"


FORGE = """
import json, os, stat, struct
def _is_sock(f):
    try:
        return stat.S_ISSOCK(os.fstat(f).st_mode)
    except OSError:
        return False
fd = next(f for f in range(3, 256) if _is_sock(f))
def forge(msg, blob=b'', shapes=(), raw_json=None):
    body = dict(msg); body['blobs'] = [list(s) for s in shapes]
    data = raw_json if raw_json is not None else json.dumps(body).encode()
    out = struct.pack('<4sIQ', b'CVL1', len(data), len(blob)) + data + blob
    while out:
        out = out[os.write(fd, out):]
def result(block, **kw):
    return {'op': 'result', 'id': block, 'status': 'ok', 'stdout': 'forged', 'stderr': '', 'error': None,
            'value_repr': None, 'notes': [], 'images': [], 'ops': [], **kw}
"""


def _violation(r: object) -> bool:
    return getattr(r, "status", None) is ExecStatus.CRASHED and any("protocol" in n for n in r.notes)  # type: ignore[attr-defined]


def test_malformed_result_frames_are_violations_never_exceptions(pool: SandboxPool) -> None:
    attacks = [
        "forge(result(1, status=5))",  # wrong type
        "forge(result(1, error={'type': 1}))",
        "forge(result(1, ops=[{'op': 'crop', 'api': 'x', 'box': ['a', 1, 2, 3]}]))",
        "forge({}, raw_json=b'[' * 200000 + b']' * 200000)",  # nesting deeper than the JSON parser's recursion
        "forge({}, raw_json=b'\\xff\\xfe{}')",  # undecodable bytes
        "forge(result(1, png=True), blob=b'GIF89a' + bytes(58), shapes=[(1, 64)])",  # a forged 'png' flag
        "forge(result(1, images=[{'source': 'show', 'region': None}]), blob=bytes(4_000_001), shapes=[(1, 4_000_001)])",
    ]
    for code in attacks:
        with pool.sync_session() as s:
            r = s.run(FORGE + code + "\nos._exit(0)")  # the forged frame is the only thing the pool gets
            assert _violation(r), (code, r)
            assert s.run("print('fresh')").stdout == "fresh\n"
    with pool.sync_session() as s:  # exactly max_image_pixels (2000 x 2000 = 4,000,000, SMALL's cap) is accepted
        r = s.run(FORGE + "forge(result(1, images=[{'source': 'show', 'region': None}]), blob=bytes(4_000_000), "
                  "shapes=[(2000, 2000)])\nos._exit(0)")
        assert r.ok and r.stdout == "forged" and r.images[0].size == (2000, 2000)


def test_early_and_out_of_turn_results_are_violations(pool: SandboxPool) -> None:
    with pool.sync_session() as s:
        # a result for the next block, sent while this one runs: rejected, not kept for later
        r = s.run(FORGE + "forge(result(2))")
        assert _violation(r) and any("block 2 while block 1" in n for n in r.notes), r
        assert s.run("x = 1").ok  # block 2, in a fresh process
        # the block forges its own result: the pool takes it (the code speaks for itself), but the real one is left
        # unread, and the next run refuses to start on a stream that is out of step
        r = s.run(FORGE + "forge(result(3))")
        assert r.ok and r.stdout == "forged"
        time.sleep(0.3)  # the real result arrives meanwhile (sent later, it would be a result for the wrong block)
        r = s.run("print(x)")
        assert _violation(r) and any("before the block was sent" in n for n in r.notes), r
        assert s.run("print('in step')").stdout == "in step\n"


def test_png_encoding_opens_png_only_and_checks_the_size_first() -> None:
    import io

    from PIL import Image

    def encoded(fmt: str, size: tuple[int, int]) -> str:
        buf = io.BytesIO()
        Image.new("RGB", size).save(buf, format=fmt)
        return repr(buf.getvalue())

    cfg = SandboxConfig(**{**SMALL, "image_encoding": "png", "prespawn": 0, "max_image_pixels": 10_000})
    with SandboxPool(cfg) as pool, pool.sync_session(images={"image_clue_0": noise_image()}) as s:
        r = s.run("show(image_clue_0.crop((0, 0, 50, 40)))")
        assert r.ok and r.images[0].size == (50, 40)
        assert np.array_equal(r.images[0].array, np.asarray(noise_image().crop((0, 0, 50, 40))))
        cases = (("BMP", (10, 10), "undecodable PNG"), ("GIF", (10, 10), "undecodable PNG"),
                 ("PNG", (101, 100), "over max_image_pixels"))  # 101 x 100 = 10,100 > 10,000
        for block, (fmt, size, why) in enumerate(cases, start=2):
            blob = encoded(fmt, size)
            r = s.run(FORGE + f"b = {blob}\nforge(result({block}, images=[{{'source': 'show', 'region': None}}]), "
                      "blob=b, shapes=[(1, len(b))])\nos._exit(0)")
            assert _violation(r) and any(why in n for n in r.notes), (fmt, r)


def test_wire_format_checks_sizes_and_shapes() -> None:
    limits = wire.FrameLimits(max_json_bytes=1000, max_blob_bytes=10_000, max_blobs=2, max_pixels=2500)
    a, b = socket.socketpair()
    try:
        img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
        wire.send(a, {"op": "x"}, [img])
        msg, blobs = wire.recv(b, limits)
        assert msg == {"op": "x"} and np.array_equal(blobs[0], img)
        for bad in (b"XXXX" + b"\0" * 12, struct.pack("<4sIQ", b"CVL1", 5000, 0),
                    struct.pack("<4sIQ", b"CVL1", 10, 10**9)):
            a.sendall(bad)
            with pytest.raises(wire.ProtocolError):
                wire.recv(b, limits)
        body = b'{"blobs": [[10, 10, 2]]}'
        a.sendall(struct.pack("<4sIQ", b"CVL1", len(body), 200) + body)
        with pytest.raises(wire.ProtocolError):
            wire.recv(b, limits)
    finally:
        a.close()
        b.close()


def test_layers_reported_and_fail_closed_rules(pool: SandboxPool) -> None:
    got = pool.layers
    assert got is not None and pool.tier == "full" and not missing_layers("full", got)
    assert set(got.namespaces) >= {"user", "pid", "net", "mnt", "ipc"} and got.landlock_fs and got.landlock_net
    assert got.seccomp and got.capabilities_dropped and got.no_new_privs and got.private_tmp and got.fresh_proc
    weaker = Layers(tier="landlock", rlimits=got.rlimits, capabilities_dropped=True, no_new_privs=True,
                    landlock_abi=7, landlock_fs=True, landlock_net=True, landlock_scope=True, seccomp=True,
                    host_uid=62000)
    assert missing_layers("landlock", weaker) == []
    assert "user namespace" in missing_layers("full", weaker)
    assert "Landlock filesystem rules" in missing_layers("landlock", Layers(tier="minimal", seccomp=True))
    msg = advice(pool.tier, "the session lacks user namespace")
    assert "sandbox.tier=landlock" in msg and "allow_weaker" in msg
    with pytest.raises(ValidationError):
        SandboxConfig(tier="landlock", allow_subprocesses=True)
    with pytest.raises(ValidationError):
        SandboxConfig(timeout=3)  # type: ignore[call-arg]


def test_landlock_tier_without_namespaces() -> None:
    with SandboxPool(SandboxConfig(**{**SMALL, "tier": "landlock"})) as pool:
        z = pool.stats()["warm_parent_pid"]
        assert z is not None
        with pool.sync_session(images={"image_clue_0": noise_image()}) as s:
            lay = s.layers
            assert lay is not None and lay.namespaces == [] and lay.no_fork and lay.landlock_scope
            scratch = lay.scratch
            assert scratch.startswith("/tmp/codevl-sandbox-")
            r = s.run(f"""
import os, signal, socket
def attempt(fn):
    try:
        fn(); return 'DONE'
    except OSError as e:
        return type(e).__name__
print(attempt(lambda: open('/etc/shadow').read()))
print(attempt(lambda: open('/work/main/pwned', 'w').write('x')))
print(attempt(lambda: os.kill({z}, signal.SIGKILL)))
print(attempt(lambda: os.kill({os.getpid()}, signal.SIGKILL)))
print(attempt(lambda: open('/proc/{os.getpid()}/environ').read()))
print(attempt(lambda: socket.create_connection(('127.0.0.1', 22))))
print(attempt(lambda: os.fork()))
open('note.txt', 'w').write('in scratch'); print(os.getcwd() == {scratch!r}, open('note.txt').read())
c = image_clue_0.crop((0, 0, 10, 10)); show(c)
""")
            lines = r.stdout.splitlines()
            assert lines[:7] == ["PermissionError"] * 7 and lines[7] == "True in scratch", r.stdout
            assert r.images[0].region is not None and os.path.isdir(scratch)
        assert not os.path.exists(scratch), "the scratch directory is removed with the session"
        assert not os.path.exists("/work/main/pwned") and pool.stats()["warm_parent_alive"]


def test_minimal_tier_is_what_its_name_says() -> None:
    """Tier minimal (for kernels without Landlock): seccomp + rlimits + no-fork only. The filesystem is NOT
    confined (documented): this test shows both what still holds and what does not."""
    with SandboxPool(SandboxConfig(**{**SMALL, "tier": "minimal"})) as pool:
        with pool.sync_session() as s:
            lay = s.layers
            assert lay is not None and not lay.landlock_fs and lay.seccomp and lay.no_fork and lay.namespaces == []
            r = s.run("import socket, os\ntry:\n    socket.create_connection(('127.0.0.1', 22))\nexcept OSError as e:\n"
                      "    print(type(e).__name__)\nprint(os.path.exists('/work/main/README.md'))")
            assert r.stdout == "PermissionError\nTrue\n"
