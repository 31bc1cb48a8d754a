"""No silent loss or false success: an unreachable teacher leaves tasks undone and fails; `synth --start` appends and a
non-empty folder is refused; curating another task file into a folder is refused (or merged); `infer --out` is
checked before the episode; Ctrl-C in `data synth`, `data curate` and `demo` stops cleanly (exit 130, says what
was kept, no traceback, no *.tmp or half-written files). The Ctrl-C tests run real `codevl` processes.

Why these take seconds: every curate run starts a real sandbox pool (3-5 s on two busy cores) and every Ctrl-C
test starts a real `codevl` process that imports its stack before it can be interrupted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from train.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[str]:
    return [x for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _closed_port() -> int:
    """A local port nobody listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_synth_refuses_a_non_empty_folder_and_start_appends(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    out = tmp_path / "s"
    base = ["data", "synth", "orientation", "--out", str(out), "--workers", "1", "--no-progress"]
    assert main([*base, "-n", "3"]) == 0
    first = _lines(out / "tasks.jsonl")
    assert main([*base, "-n", "2"]) == 2 and "--overwrite" in capsys.readouterr().err
    assert _lines(out / "tasks.jsonl") == first  # untouched
    assert main([*base, "-n", "2", "--start", "3"]) == 0
    rows = [json.loads(x) for x in _lines(out / "tasks.jsonl")]
    # 3 old rows kept in place + indices 3 and 4 appended (ids are <generator>-<seed>-<index:06d>)
    assert _lines(out / "tasks.jsonl")[:3] == first
    assert [r["id"] for r in rows] == [f"orientation-0-00000{i}" for i in range(5)]
    assert main([*base, "-n", "2", "--start", "4"]) == 2  # index 4 is there already
    assert "already holds 1 of the tasks" in capsys.readouterr().err
    assert main([*base, "-n", "1", "--overwrite"]) == 0
    assert len(_lines(out / "tasks.jsonl")) == 1 and len(list((out / "images").iterdir())) == 1
    assert not list(out.rglob("*.tmp")) and not (out / ".extend.jsonl").exists()


def test_curate_with_an_unreachable_teacher_marks_nothing_done_and_fails(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    tasks = tmp_path / "s" / "tasks.jsonl"
    assert main(["data", "synth", "orientation", "-n", "3", "--out", str(tmp_path / "s"), "--workers", "1",
                 "--no-progress"]) == 0
    out = tmp_path / "c"
    argv = ["data", "curate", str(tasks), "--out", str(out), "--teacher", "openai", "--model", "m", "--base-url",
            f"http://127.0.0.1:{_closed_port()}/v1", "--max-retries", "0", "--batch-size", "2", "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "codevl data curate: no task was curated" in captured.err and "ConnectError" in captured.err
    assert "NOT DONE: 3 task(s)" in captured.out and "stopped after the first batch" in captured.out
    assert _lines(out / "done.txt") == [] and _lines(out / "episodes.jsonl") == []
    report = json.loads((out / "report.json").read_text())
    assert report["tasks_failed"] == 3 and report["failed_episodes"] == {"engine_error": 2}  # batch 1: 2 tasks x 1


def test_curate_into_a_folder_of_another_task_file_is_refused_or_merged(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    for name, gen in (("a", "orientation"), ("b", "symbolic")):
        assert main(["data", "synth", gen, "-n", "1", "--out", str(tmp_path / name), "--workers", "1",
                     "--no-progress", "--set", "min_side=256", "--set", "max_side=320"]) == 0
    out = tmp_path / "c"
    cur = ["data", "curate", "--out", str(out), "--variants", "single_tool", "--no-progress"]
    assert main([*cur[:2], str(tmp_path / "a" / "tasks.jsonl"), *cur[2:]]) == 0
    kept_a = _lines(out / "sft.jsonl")
    assert kept_a
    assert main([*cur[:2], str(tmp_path / "b" / "tasks.jsonl"), *cur[2:]]) == 2
    err = capsys.readouterr().err
    assert "already holds 1 curated task(s) that are not in this task list" in err and "--merge" in err
    assert _lines(out / "sft.jsonl") == kept_a  # nothing dropped
    assert main([*cur[:2], str(tmp_path / "b" / "tasks.jsonl"), *cur[2:], "--merge"]) == 0
    merged = _lines(out / "sft.jsonl")
    assert set(kept_a) < set(merged)  # a's rows kept, b's added


def test_infer_checks_out_before_loading_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    (tmp_path / "taken").write_text("a file\n")
    t0 = time.perf_counter()
    # a model id that is not cached would fail much later: --out is checked first
    assert main(["infer", "--image", str(tmp_path / "x.png"), "--question", "q", "--model", "nobody/nothing",
                 "--out", str(tmp_path / "taken")]) == 2
    assert time.perf_counter() - t0 < 30 and "is a file; give a folder" in capsys.readouterr().err


def test_infer_exits_1_after_an_engine_error_and_keeps_the_trajectory(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    out = tmp_path / "run"
    assert main(["infer", "--image", str(tmp_path / "x.png"), "--question", "q", "--engine", "openai", "--model", "m",
                 "--base-url", f"http://127.0.0.1:{_closed_port()}/v1", "--max-retries", "0", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "codevl infer: the episode ended in engine_error" in err and "ConnectError" in err
    row = json.loads((out / "trajectories" / "infer.jsonl").read_text())
    assert row["finish_reason"] == "engine_error" and "ConnectError" in row["error"]


def test_validate_names_an_oversized_image_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # 14000 x 14000 = 196e6 px, over twice PIL's default limit: DecompressionBombError at open
    (tmp_path / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 14000, 14000, 8, 2,
                                                                                    0, 0, 0)) + chunk(b"IEND", b""))
    (tmp_path / "t.jsonl").write_text(json.dumps({"id": "a", "images": ["big.png"], "question": "q", "answer": "x",
                                                  "answer_type": "text"}) + "\n")
    assert main(["data", "validate", str(tmp_path / "t.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"image cannot be read: {tmp_path / 'big.png'}" in err and "decompression bomb" in err


# ---- Ctrl-C --------------------------------------------------------------------------------------------------------


def _interrupt(argv: list[str], ready: Callable[[], bool], *, cwd: Path, timeout: float = 120) -> tuple[int, str]:
    """Run `codevl argv` as a terminal would (own process group), press Ctrl-C once `ready()`; (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "train.cli", *argv], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "never became ready"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal sends Ctrl-C to the whole group (pool workers included)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_ctrl_c_in_synth_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert main(["data", "synth", "visual_search", "-n", "2", "--out", str(out), "--workers", "1",
                 "--no-progress"]) == 0
    before = sorted(p.name for p in (out / "images").iterdir())
    tasks_before = (out / "tasks.jsonl").read_text()
    code, err = _interrupt(["data", "synth", "visual_search", "-n", "5000", "--start", "2", "--out", str(out),
                            "--workers", "2", "--no-progress"],
                           lambda: len(list((out / "images").iterdir())) > len(before) + 2, cwd=tmp_path)
    assert code == 130 and "Traceback" not in err, err
    assert "codevl data synth: interrupted (Ctrl-C)" in err and "leaves it as it was" in err
    assert (out / "tasks.jsonl").read_text() == tasks_before
    assert sorted(p.name for p in (out / "images").iterdir()) == before  # the unwritten tasks' images are gone
    assert sorted(p.name for p in out.iterdir()) == ["images", "tasks.jsonl"]  # no *.tmp, no .extend.jsonl


def test_ctrl_c_in_curate_keeps_committed_batches(tmp_path: Path) -> None:
    assert main(["data", "synth", "orientation", "-n", "40", "--out", str(tmp_path / "s"), "--workers", "2",
                 "--no-progress", "--set", "min_side=200", "--set", "max_side=256"]) == 0
    out = tmp_path / "c"
    code, err = _interrupt(["data", "curate", str(tmp_path / "s" / "tasks.jsonl"), "--out", str(out),
                            "--batch-size", "1", "--variants", "single_tool", "--no-progress"],
                           lambda: len(_lines(out / "done.txt")) >= 2, cwd=tmp_path)
    assert code == 130 and "Traceback" not in err, err
    assert "codevl data curate: interrupted (Ctrl-C); every committed batch is kept" in err
    done = set(_lines(out / "done.txt"))
    assert 2 <= len(done) < 40
    # sft.jsonl was rebuilt from the committed batches only; nothing half-written is left
    sft_tasks = {json.loads(x)["task"]["id"] for x in _lines(out / "sft.jsonl")}
    assert sft_tasks and sft_tasks <= done
    assert not list(out.rglob("*.tmp"))
    assert json.loads((out / "report.json").read_text())["kept"] == len(_lines(out / "sft.jsonl"))


def test_ctrl_c_in_demo_stops_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    code, err = _interrupt(["demo", f"output_dir={out}"], lambda: (out / "config.yaml").exists(), cwd=tmp_path)
    assert code == 130 and "Traceback" not in err, err
    assert "codevl demo: interrupted (Ctrl-C)" in err
    assert not list(out.rglob("*.tmp"))
