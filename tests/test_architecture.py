"""Guards for the contracts of docs/architecture.md: import direction, no heavy imports where forbidden, packages resolve here."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sandbox", "rollout", "rewards", "data", "train")

# Import direction: train -> data -> rewards -> rollout -> sandbox (each may import the ones after it).
ALLOWED_INTERNAL: dict[str, set[str]] = {
    "sandbox": set(),
    "rollout": {"sandbox"},
    "rewards": {"rollout", "sandbox"},
    "data": {"rewards", "rollout", "sandbox"},
    "train": {"data", "rewards", "rollout", "sandbox"},
}
FORBIDDEN_EXTERNAL: dict[str, set[str]] = {
    "sandbox": {"torch", "transformers", "vllm", "trl", "peft", "accelerate", "deepspeed"},
    "rewards": {"torch", "transformers", "vllm", "trl", "peft", "accelerate", "deepspeed"},
    "data": {"torch", "vllm", "trl", "peft", "accelerate", "deepspeed"},
    "rollout": set(),
    "train": set(),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Top-level module names imported anywhere in the file (function-local imports included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def test_import_direction_and_forbidden_imports() -> None:
    problems = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for line, name in _imports(path):
                rel = path.relative_to(ROOT)
                if name in PACKAGES and name != pkg and name not in ALLOWED_INTERNAL[pkg]:
                    problems.append(f"{rel}:{line}: {pkg} must not import {name} (docs/architecture.md import direction)")
                if name in FORBIDDEN_EXTERNAL[pkg]:
                    problems.append(f"{rel}:{line}: {pkg} must not import {name}")
    assert not problems, "\n".join(problems)


def _fresh_modules(code: str, cwd: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_packages_resolve_inside_the_repository_from_any_directory(tmp_path: Path) -> None:
    """A top-level name like `data` could collide with another installed package; ours must win."""
    code = (
        "import importlib, json; "
        f"print(json.dumps({{n: importlib.import_module(n).__file__ for n in {list(PACKAGES)!r}}}))"
    )
    for cwd in (ROOT, tmp_path):
        files = _fresh_modules(code, cwd)
        for name, file in files.items():
            assert Path(file).resolve().is_relative_to(ROOT), f"{name} resolved to {file} (cwd {cwd})"


def test_configs_and_light_packages_load_without_torch() -> None:
    code = (
        "import sys, json, importlib, pkgutil\n"
        "import train.config, train.config.kinds, train.cli\n"
        "for pkg in ('sandbox', 'rewards', 'data'):\n"
        "    m = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(m.__path__, pkg + '.'):\n"
        "        if not info.name.endswith(('.cli', '__main__')):\n"
        "            importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(n for n in ('torch', 'transformers', 'vllm') if n in sys.modules)))\n"
    )
    assert _fresh_modules(code, ROOT) == []


def test_markers_registered_and_strict(pytestconfig: pytest.Config) -> None:
    names = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    assert {"gpu", "slow"} <= names
    assert pytestconfig.option.strict_markers or "--strict-markers" in pytestconfig.getini("addopts")


def test_tests_run_offline() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
