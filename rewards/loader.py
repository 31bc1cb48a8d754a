"""Reward sets from YAML (`configs/rewards/*.yaml`) or dicts, with errors that name file, line and key.

File format (a mapping; unknown keys are errors):

    name: codevision               # optional (default: the file's stem)
    description: CodeVision paper reward (docs/methods.md)
    components:
      - name: answer_accuracy      # a registered component
        weight: 1.0                # optional, default 1.0; 0 = computed and logged, not trained on
        params: {rel_tol: 0.01}    # optional; validated by the component's Params (unknown keys rejected)
      - name: tapo_tool
        label: tapo_tool_strict    # optional: the key it is recorded under (to use a component twice)
        weight: 0.5

A mistake reads, e.g.:

    configs/rewards/x.yaml:7: components[1].params: unknown parameter 'min_focuss' of component 'tapo_tool'
    (did you mean 'min_focus'?); valid parameters: mode, reduce, ...

Paths that are not found as given are also looked up relative to the repository root.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rewards.errors import RewardConfigError
from rewards.registry import component_class, suggestion
from rewards.reward_set import RewardSet

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOP_KEYS = ("name", "description", "components")
ENTRY_KEYS = ("name", "weight", "params", "label")


def _lines(node: yaml.Node | None, prefix: str, out: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            out[path] = key_node.start_mark.line + 1
            _lines(value_node, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[f"{prefix}[{i}]"] = item.start_mark.line + 1
            _lines(item, f"{prefix}[{i}]", out)


def _where(source: str, lines: dict[str, int], path: str) -> str:
    probe = path
    while probe:
        if probe in lines:
            return f"{source}:{lines[probe]}"
        probe = probe.rsplit(".", 1)[0] if "." in probe else (probe.rsplit("[", 1)[0] if "[" in probe else "")
    return source


def _model_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model that `loc` points into."""
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = args[0] if args else ann
    return list(getattr(current, "model_fields", {}))


def _param_problems(err: ValidationError, comp: str, model: type[BaseModel], prefix: str,
                    source: str, lines: dict[str, int]) -> list[str]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        dotted = ".".join(str(p) for p in loc)
        path = f"{prefix}.{dotted}" if dotted else prefix
        where = _where(source, lines, path)
        if e["type"] == "extra_forbidden":
            valid = _model_fields(model, loc)
            problems.append(f"{where}: {prefix}: unknown parameter {dotted!r} of component {comp!r}"
                            f"{suggestion(str(loc[-1]), valid)}; valid parameters: {', '.join(valid) or '(none)'}")
        else:
            problems.append(f"{where}: {path}: {e['msg']} (got {e.get('input')!r})")
    return problems


def reward_set_from_config(data: Any, *, source: str = "<config>", lines: dict[str, int] | None = None,
                           default_name: str = "custom") -> RewardSet:
    """Build a reward set from parsed YAML (see the module docstring); all problems are reported together."""
    lines = lines or {}
    if isinstance(data, list):  # shorthand: a bare list of components
        data = {"components": data}
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RewardConfigError(f"{source}: a reward set is a mapping with a 'components:' list, got {type(data).__name__}")
    problems: list[str] = []
    for key in data:
        if key not in TOP_KEYS:
            problems.append(f"{_where(source, lines, str(key))}: unknown key {key!r}{suggestion(str(key), list(TOP_KEYS))}; "
                            f"valid keys: {', '.join(TOP_KEYS)}")
    entries = data.get("components", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        problems.append(f"{_where(source, lines, 'components')}: 'components' must be a list of "
                        "{name, weight, params} entries")
        entries = []
    components = []
    for i, entry in enumerate(entries):
        prefix = f"components[{i}]"
        where = _where(source, lines, prefix)
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: {prefix} must be a mapping with keys {', '.join(ENTRY_KEYS)}")
            continue
        for key in entry:
            if key not in ENTRY_KEYS:
                problems.append(f"{_where(source, lines, f'{prefix}.{key}')}: {prefix}: unknown key {key!r}"
                                f"{suggestion(str(key), list(ENTRY_KEYS))}; valid keys: {', '.join(ENTRY_KEYS)}")
        name = entry.get("name")
        if not isinstance(name, str):
            problems.append(f"{where}: {prefix}: 'name' (a component name) is required")
            continue
        try:
            cls = component_class(name)
        except RewardConfigError as exc:
            problems.append(f"{_where(source, lines, f'{prefix}.name')}: {prefix}: {exc}")
            continue
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            problems.append(f"{_where(source, lines, f'{prefix}.weight')}: {prefix}.weight must be a number, got {weight!r}")
            continue
        label = entry.get("label")
        if label is not None and (not isinstance(label, str) or not label.isidentifier()):
            problems.append(f"{_where(source, lines, f'{prefix}.label')}: {prefix}.label must be an identifier, got {label!r}")
            continue
        params = entry.get("params") or {}
        if not isinstance(params, Mapping):
            problems.append(f"{_where(source, lines, f'{prefix}.params')}: {prefix}.params must be a mapping")
            continue
        try:
            components.append(cls(params, weight=float(weight), label=label))
        except ValidationError as err:
            problems.extend(_param_problems(err, name, cls.Params, f"{prefix}.params", source, lines))
        except ValueError as exc:
            problems.append(f"{where}: {prefix}: {exc}")
    if problems:
        head = f"invalid reward set {source} ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"
        raise RewardConfigError("\n  ".join([head, *problems]))
    name = data.get("name") or default_name
    try:
        return RewardSet(components, name=str(name), description=str(data.get("description") or ""), source=source)
    except RewardConfigError as exc:
        raise RewardConfigError(f"{source}: {exc}") from None


def resolve_path(path: str | Path) -> Path:
    """`path` as given if it exists, else relative to the repository root."""
    p = Path(path)
    if p.is_file():
        return p
    alt = PROJECT_ROOT / p
    if alt.is_file():
        return alt
    raise RewardConfigError(f"reward set file not found: {path} (looked in the working directory and {PROJECT_ROOT})")


def load_reward_set(path: str | Path) -> RewardSet:
    """Load and validate a reward set YAML file (see the module docstring)."""
    p = resolve_path(path)
    text = p.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RewardConfigError(f"{path}: not valid YAML: {exc}") from exc
    lines: dict[str, int] = {}
    _lines(node, "", lines)
    return reward_set_from_config(data, source=str(path), lines=lines, default_name=p.stem)
