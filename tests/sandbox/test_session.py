"""A session is one trajectory's interpreter: persistence, notebook-style values, errors, restarts."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sandbox import ExecStatus, SandboxClosedError, SandboxPool

from tests.sandbox.conftest import noise_image


def test_state_persists_and_last_expression_is_shown(pool: SandboxPool) -> None:
    with pool.sync_session(images={"image_clue_0": noise_image()}) as s:
        r = s.run("x = 41\nprint('size', image_clue_0.size, type(image_clue_0).__name__)\nx + 1")
        assert r.status is ExecStatus.OK and r.value_repr == "42"
        assert r.stdout == "size (320, 200) Image\n"
        r = s.run("def f(v):\n    return v * 2\nitems = [f(i) for i in range(3)]")
        assert r.ok and r.value_repr is None and r.stdout == ""
        assert s.run("items").value_repr == "[0, 2, 4]"
        assert s.run("None").value_repr is None


def test_failed_block_keeps_earlier_state_and_reports_the_line(pool: SandboxPool) -> None:
    with pool.sync_session() as s:
        assert s.run("x = 41").ok
        r = s.run("y = x * 2\n\nraise ValueError('boom')\nz = 1")
        assert r.status is ExecStatus.ERROR and r.error is not None
        assert (r.error.type, r.error.message, r.error.line) == ("ValueError", "boom", 3)
        assert r.error.traceback.startswith("Traceback") and "<cell" in r.error.traceback
        assert "sandbox/" not in r.error.traceback, "frames of the sandbox itself must be trimmed"
        assert s.run("print(x, y, 'z' in globals())").stdout == "41 82 False\n"


def test_library_frames_below_user_code_are_kept_and_syntax_errors_have_a_line(pool: SandboxPool) -> None:
    with pool.sync_session() as s:
        r = s.run("import json\njson.loads('{bad')")
        assert r.error is not None and r.error.type == "JSONDecodeError" and r.error.line == 2
        assert "json/decoder.py" in r.error.traceback
        r = s.run("x = (1,\nprint(x")
        assert r.status is ExecStatus.ERROR and r.error is not None and r.error.type == "SyntaxError"
        assert r.error.line is not None


def test_input_images_are_pil_and_preloaded_modules_exist(pool: SandboxPool) -> None:
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[2, 3] = (255, 0, 0)
    with pool.sync_session(images={"image_clue_0": arr, "image_clue_1": noise_image().convert("L")}) as s:
        r = s.run("print(type(image_clue_0).__name__, image_clue_0.mode, image_clue_0.size, image_clue_0.getpixel((3, 2)))\n"
                  "print(image_clue_1.mode, np.__name__, cv2.__name__, plt.__name__, skimage.__name__, "
                  "Image.__name__, ImageOps.__name__, ImageEnhance.__name__, ImageDraw.__name__)")
        assert r.stdout.splitlines() == ["Image RGB (20, 10) (255, 0, 0)",
                                         "L numpy cv2 matplotlib.pyplot skimage PIL.Image PIL.ImageOps "
                                         "PIL.ImageEnhance PIL.ImageDraw"]


def test_stdout_is_capped_head_and_tail_with_a_note(pool: SandboxPool) -> None:
    with pool.sync_session() as s:
        r = s.run("for i in range(20000): print(i)")
        assert r.ok and r.stdout.startswith("0\n1\n") and r.stdout.rstrip().endswith("19999")
        assert "characters dropped" in r.stdout and any("stdout truncated" in n for n in r.notes)
        assert len(r.stdout) < 17000
        r = s.run("import sys\nprint('to stderr', file=sys.stderr)")
        assert r.stderr == "to stderr\n"


def test_sys_exit_keeps_the_session_and_os_exit_restarts_it(pool: SandboxPool) -> None:
    with pool.sync_session(images={"image_clue_0": noise_image()}) as s:
        assert s.run("x = 5").ok
        r = s.run("import sys\nsys.exit(3)")
        assert r.status is ExecStatus.ERROR and r.error is not None and r.error.type == "SystemExit"
        assert s.run("print(x)").stdout == "5\n"
        r = s.run("import os\nos._exit(3)")
        assert r.status is ExecStatus.CRASHED and any("exited with code 3" in n for n in r.notes)
        r = s.run("print('x' in globals(), image_clue_0.size)")
        assert r.ok and r.stdout == "False (320, 200)\n" and s.restarts == 1
        assert any("fresh interpreter" in n for n in r.notes)


def test_clearing_globals_and_monkeypatching_builtins_break_only_that_block(pool: SandboxPool) -> None:
    with pool.sync_session(images={"image_clue_0": noise_image()}) as s:
        r = s.run("import builtins\nbuiltins.print = None\nbuiltins.len = lambda *a: 0\nbuiltins.__import__ = None\n"
                  "builtins.repr = None")
        assert r.ok
        r = s.run("import math\nprint(len([1, 2, 3]), math.pi > 3)")
        assert r.ok and r.stdout == "3 True\n"
        r = s.run("globals().clear()")
        assert r.ok
        r = s.run("import numpy as np\nshow(np.zeros((4, 4), np.uint8))\nprint('image_clue_0' in globals())")
        assert r.ok and r.stdout == "False\n" and len(r.images) == 1
        r = s.run("import sys\nsys.stdout = None\nsys.settrace(lambda *a: None)")
        assert r.ok
        assert s.run("print('fine')").stdout == "fine\n"


def test_misuse_raises_and_async_api_works_from_several_event_loops(pool: SandboxPool) -> None:
    async def one(k: int) -> str:
        async with pool.session(images={"image_clue_0": noise_image(seed=k)}) as s:
            await s.run(f"k = {k}")
            return (await s.run("print(k * 10)")).stdout

    async def many() -> list[str]:
        return await asyncio.wait_for(asyncio.gather(*(one(k) for k in range(6))), 60)

    for _ in range(2):  # two separate event loops, one pool
        outs = asyncio.run(many())
        assert outs == [f"{k * 10}\n" for k in range(6)]

    async def misuse() -> None:
        s = pool.session()
        with pytest.raises(SandboxClosedError):
            await s.run("1")
        async with s:
            with pytest.raises(TypeError):
                await s.run(b"1")  # type: ignore[arg-type]
            first = asyncio.create_task(s.run("import time; time.sleep(0.3)"))
            await asyncio.sleep(0.05)
            with pytest.raises(RuntimeError):
                await s.run("1")
            assert (await first).ok
        with pytest.raises(SandboxClosedError):
            await s.run("1")

    asyncio.run(misuse())
    with pytest.raises(TypeError):
        pool.session(images={"image_clue_0": "not an image"})
    with pytest.raises(ValueError):
        pool.session(images={"not valid": noise_image()})


def test_a_block_with_more_notes_than_a_result_carries_is_still_a_result(pool: SandboxPool) -> None:
    """70 figures that fail to draw give 70 notes; the worker keeps the first 64 (wire.MAX_NOTES), so the frame
    stays within what the pool accepts and the block is not mistaken for a protocol violation."""
    with pool.sync_session() as s:
        r = s.run("import matplotlib.artist\nclass Bad(matplotlib.artist.Artist):\n    def draw(self, renderer):\n"
                  "        raise ValueError('cannot draw')\nfor _ in range(70):\n    plt.figure().add_artist(Bad())")
        assert r.ok and len(r.notes) == 64 and all("could not be drawn" in n for n in r.notes), r.notes[:3]
