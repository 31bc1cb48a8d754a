"""Load a config from YAML plus dotted command-line overrides, validate it, print it, save it.

    cfg = load_config(SFTConfig, "configs/sft/tiny.yaml", ["optim.lr=1e-6", "train.epochs=2"])

Values in overrides are parsed as YAML (`true`, `1e-6`, `[a, b]`, `null`). Errors name the file and line of
the offending key (or "command-line override"), its dotted path, and the valid keys or values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from train.config.errors import ConfigError, format_validation_error

M = TypeVar("M", bound=BaseModel)

RESOLVED_NAME = "config.yaml"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def project_path(path: str | Path) -> Path:
    """`path` as given when it exists (or is absolute), else the same relative path under the project root when
    that exists there, so the README's `configs/...` commands work from any directory; else `path` unchanged."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute() or not (PROJECT_ROOT / p).exists():
        return p
    return PROJECT_ROOT / p


def _lines(node: yaml.Node, prefix: str, out: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = f"{prefix}.{key}" if prefix else key
            out[path] = key_node.start_mark.line + 1
            _lines(value_node, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, f"{prefix}[{i}]", out)


def load_yaml_with_lines(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The YAML mapping at `path` and, for every dotted key path in it, the 1-based line it is on."""
    path = project_path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a config YAML file, e.g. configs/sft/tiny_cpu.yaml")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (looked in the working directory and {PROJECT_ROOT})")
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values, got {type(data).__name__}")
    lines: dict[str, int] = {}
    if node is not None:
        _lines(node, "", lines)
    return data, lines


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> set[str]:
    """Apply `a.b.c=value` overrides to `data` in place; returns the dotted paths that were set."""
    touched: set[str] = set()
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key.path=value (e.g. optim.lr=1e-6)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from exc
        parts = key.split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {item!r}: '{'.'.join(parts[: i + 1])}' is a value ({child!r}), not a section"
                )
            node = child
        node[parts[-1]] = value
        touched.add(key)
    return touched


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load_config(model: type[M], path: str | Path | None, overrides: Sequence[str] = ()) -> M:
    """Validate YAML at `path` (or an empty mapping) plus `overrides` into `model`, or raise ConfigError."""
    data, lines = load_yaml_with_lines(path) if path is not None else ({}, {})
    touched = apply_overrides(data, overrides)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(err, model, str(path or "<overrides>"), lines, touched) from None


def resolved_yaml(cfg: BaseModel) -> str:
    """The fully resolved config (defaults included) as YAML, in field order."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=False)


def save_resolved(cfg: BaseModel, run_dir: str | Path) -> Path:
    """Write the resolved config into `run_dir` (created if needed) as config.yaml; returns its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / RESOLVED_NAME
    out.write_text(resolved_yaml(cfg))
    return out
