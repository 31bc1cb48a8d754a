"""A user's mistake in any `codevl` command: one line `codevl <command>: <message>`, exit code 1 or 2, no traceback
(train.user_errors); --help documents the codes; --version works; bugs still raise."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from train.cli import main
from train.user_errors import USER_ERRORS, user_error

ROOT = Path(__file__).resolve().parents[2]
CODEVL = [sys.executable, "-m", "train.cli"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height and has no pixel data (PIL reads the size from IHDR alone)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Task file, a good and a truncated image, a 196-megapixel image header, a snippet, a plain YAML, a file."""
    from PIL import Image

    d = tmp_path_factory.mktemp("mistakes")
    assert main(["data", "synth", "orientation", "-n", "2", "--out", str(d / "s"), "--workers", "1",
                 "--no-progress"]) == 0
    Image.new("RGB", (64, 48), (200, 30, 30)).save(d / "good.png")
    full = (d / "good.png").read_bytes()
    (d / "trunc.png").write_bytes(full[: len(full) // 2])
    (d / "bomb.png").write_bytes(_png_header(14000, 14000))  # 196e6 px > 2 x PIL's 89.5e6 limit: an error, not a warning
    (d / "a.py").write_text("print(1)\n")
    (d / "plain.yaml").write_text("x: 1\n")
    (d / "file.txt").write_text("not a folder\n")
    (d / "notamodel").mkdir()
    return d


GOOD = ["--image", "{d}/good.png", "--question", "what colour?"]
# (argv with {d} for the work folder, exit code, fragment of the one-line message)
CASES = [
    (["config", "{d}/missing.yaml"], 2, "config file not found: {d}/missing.yaml"),
    (["config", "{d}"], 2, "is a directory; give a config YAML file"),
    (["config", "{d}/plain.yaml"], 2, "cannot tell the kind of {d}/plain.yaml"),
    (["demo", "--dry-run", "rewards=nope.yaml"], 2, "reward set file not found: nope.yaml"),
    (["demo", "--dry-run", "data.generator_config.orientation.bogus=1"], 2, "unknown config key(s) bogus"),
    (["data", "validate", "{d}"], 2, "{d}: is a directory"),
    (["data", "validate", "{d}/trunc.png"], 2, "not a JSONL text file"),
    (["data", "stats", "{d}"], 2, "{d}: is a directory, expected a file"),
    (["data", "stats", "{d}/nope.jsonl"], 2, "{d}/nope.jsonl: no such file or directory"),
    (["data", "synth", "orientation", "-n", "0", "--out", "{d}/x"], 2, "-n/--num must be at least 1, got 0"),
    (["data", "synth", "orientation", "-n", "2", "--out", "{d}/x", "--oracle", "single_tol"], 2,
     "unknown oracle variant 'single_tol'"),
    (["data", "synth", "orientation", "-n", "2", "--out", "{d}/file.txt"], 2, "is a file; give a folder"),
    (["data", "synth", "orientation", "-n", "2", "--out", "{d}/s"], 2, "is not empty"),
    (["data", "convert", "tasks", "{d}/s/tasks.jsonl", "--out", "{d}"], 2, "is a directory; give a file name"),
    (["data", "curate", "{d}/s/tasks.jsonl", "--out", "{d}/c", "--temperature", "-1"], 2,
     "--temperature must be at least 0, got -1.0"),
    (["data", "curate", "{d}/s/tasks.jsonl", "--out", "{d}/file.txt"], 2, "is a file; give a folder"),
    (["data", "curate", "{d}/nope.jsonl", "--out", "{d}/c"], 2, "nope.jsonl"),
    (["data", "curate", "{d}/s/tasks.jsonl", "--out", "{d}/c", "--rule", "bogus=1"], 2, "bogus: unknown rule; valid"),
    (["data", "curate", "{d}/s/tasks.jsonl", "--out", "{d}/c", "--protocol", "bogus"], 2, "unknown protocol 'bogus'"),
    (["data", "curate", "{d}/s/tasks.jsonl", "--out", "{d}/c", "--teacher", "openai"], 2, "needs --model and --base-url"),
    (["tiny-model", "--out", "{d}/file.txt"], 2, "--out {d}/file.txt: is a file"),
    (["rescore", "{d}", "--rewards", "nope.yaml"], 2, "reward set file not found: nope.yaml"),
    (["infer", *GOOD, "--model", "x/y", "--question", " "], 2, "--question is empty"),
    (["infer", *GOOD, "--model", "x/y", "--max-turns", "0"], 2, "--max-turns must be at least 1, got 0"),
    (["infer", *GOOD, "--model", "x/y", "--temperature", "-1"], 2, "--temperature must be at least 0"),
    (["infer", *GOOD, "--model", "x/y", "--timeout", "-1"], 2, "--timeout must be more than 0 seconds"),
    (["infer", *GOOD, "--model", "{d}/no-such-model"], 1, "no such directory"),  # not "cannot reach the hub"
    (["infer", *GOOD, "--model", "{d}/notamodel"], 1, "not a model directory (no config.json)"),
    (["infer", *GOOD, "--model", "x/y", "--out", "{d}/file.txt"], 2, "--out {d}/file.txt: is a file"),
    (["infer", "--image", "{d}", "--question", "q", "--model", "x/y"], 2, "is a directory, expected a file"),
    (["infer", "--image", "{d}/trunc.png", "--question", "q", "--model", "x/y"], 1, "not a readable image"),
    (["infer", "--image", "{d}/bomb.png", "--question", "q", "--model", "x/y"], 1, "decompression bomb"),
    (["infer", *GOOD, "--model", "gpt-x", "--engine", "openai"], 2, "--engine openai needs --base-url"),
    (["sandbox", "{d}"], 2, "is a directory, expected a file"),
    (["sandbox", "{d}/a.py", "--image", "{d}/trunc.png"], 1, "not a readable image"),
    (["sandbox", "{d}/a.py", "--timeout", "-1"], 2, "--timeout must be more than 0 seconds"),
    (["rescore", "{d}/nope", "--rewards", "configs/rewards/codevision.yaml"], 2, "nope"),
]


@pytest.mark.parametrize(("argv", "code", "fragment"), CASES, ids=[" ".join(c[0][:3]) + f" -> {c[1]}" for c in CASES])
def test_mistake_gives_message_and_exit_code(argv: list[str], code: int, fragment: str, work: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.replace("{d}", str(work)) for a in argv]
    assert main(args) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert fragment.replace("{d}", str(work)) in err, err
    command = args[0] if args[0] != "data" else f"data {args[1]}"
    assert f"codevl {command}: " in err


def test_vllm_engine_without_vllm_is_a_message(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    argv = ["rl", "--config", "configs/rl/tiny_cpu.yaml", f"data.train_files=[{work}/s/tasks.jsonl]",
            "rollout.engine=vllm_colocate", "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("codevl rl: vLLM is not installed") and "Traceback" not in err


def test_nothing_was_done_after_a_usage_error(work: Path) -> None:
    # the oracle-variant typo is found before generating: no folder is created
    assert not (work / "x").exists()


def test_help_documents_exit_codes_and_version_prints(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["infer", "--help"], ["data", "synth", "--help"], ["--version"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        out = capsys.readouterr().out
        if argv == ["--version"]:
            assert out.startswith("codevl ")
        else:
            assert "exit codes (every command):" in out and "130  interrupted" in out


def test_readme_config_paths_work_from_any_directory(tmp_path: Path) -> None:
    out = subprocess.run([*CODEVL, "config", "configs/sft/tiny_cpu.yaml"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# sft config resolved from configs/sft/tiny_cpu.yaml")


def test_a_bug_is_not_a_user_error() -> None:
    # Our own mistakes keep their traceback: only registered types (and UserError) are reported as messages.
    assert user_error(KeyError("x")) is None and user_error(TypeError("x")) is None
    assert user_error(ValueError("x")) is None and user_error(RuntimeError("x")) is None
    assert user_error(FileNotFoundError(2, "No such file or directory", "a.yaml")).exit_code == 2  # type: ignore[union-attr]


def test_every_registered_error_type_exists() -> None:
    # A renamed exception class would silently fall out of the registry: each name must import.
    import importlib

    for qualname in USER_ERRORS:
        module, _, name = qualname.rpartition(".")
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError:  # nested: PIL.Image.DecompressionBombError
            parent, _, attr = module.rpartition(".")
            obj = getattr(importlib.import_module(parent), attr)
        cls = getattr(obj, name)
        assert isinstance(cls, type) and issubclass(cls, BaseException), qualname
        assert f"{cls.__module__}.{cls.__qualname__}" == qualname, qualname
