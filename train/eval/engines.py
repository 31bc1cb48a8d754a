"""The engine an evaluation config names (`EvalModel`), built with only that engine's imports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from train.config.eval import EvalModel


class EvalSetupError(ValueError):
    """The evaluation cannot start (a missing model directory, script or task file); the message says what to fix."""


def load_script(path: str | Path) -> Any:
    """A scripted policy's turns from JSON: a list of assistant texts, or an object task id -> list of texts."""
    p = Path(path)
    if not p.is_file():
        raise EvalSetupError(f"model.script {p} not found (a JSON list of assistant turns, or task id -> list)")
    try:
        script = json.loads(p.read_text())
    except ValueError as exc:
        raise EvalSetupError(f"model.script {p} is not valid JSON: {exc}") from None
    ok_list = isinstance(script, list) and all(isinstance(t, str) for t in script)
    ok_map = isinstance(script, dict) and all(isinstance(v, list) and all(isinstance(t, str) for t in v)
                                              for v in script.values())
    if not (ok_list or ok_map):
        raise EvalSetupError(f"model.script {p}: expected a list of strings or an object of task id -> list of strings")
    return script


def check_model(cfg: EvalModel) -> None:
    """Fail early, before any work, on a model that cannot be loaded: a missing script or local model directory."""
    if cfg.engine == "scripted":
        assert cfg.script is not None
        load_script(cfg.script)
        return
    assert cfg.name_or_path is not None
    local = Path(cfg.name_or_path).expanduser()
    # a hub id is "org/name"; anything else (absolute, relative with more parts, existing) is a local directory
    looks_local = (local.is_absolute() or cfg.name_or_path.startswith((".", "~")) or local.exists()
                   or cfg.name_or_path.count("/") != 1)
    if cfg.engine in ("hf", "vllm_server", "vllm_colocate") and looks_local and not (local / "config.json").is_file():
        raise EvalSetupError(f"model.name_or_path {cfg.name_or_path} is not a model directory (no config.json there)")


def build_engine(cfg: EvalModel, *, seed: int = 0) -> Any:
    """The engine for `cfg` (see `EvalModel` for what each kind needs)."""
    from rollout.engines.registry import create_engine

    if cfg.engine == "scripted":
        assert cfg.script is not None
        return create_engine("scripted", load_script(cfg.script), **cfg.engine_kwargs)
    check_model(cfg)
    assert cfg.name_or_path is not None
    if cfg.engine == "hf":
        import torch

        from train.config.model import ModelConfig
        from train.model.loading import load_model

        device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, processor = load_model(ModelConfig(name_or_path=cfg.name_or_path, dtype=cfg.dtype,
                                                  attn_implementation=cfg.attn_implementation,
                                                  freeze_vision_tower=False, freeze_projector=False), device=device)
        model.eval()
        return create_engine("hf", model, processor, max_batch_size=cfg.max_batch_size, **cfg.engine_kwargs)
    if cfg.engine == "vllm_colocate":
        return create_engine("vllm_colocate", cfg.name_or_path, seed=seed, dtype=cfg.dtype, **cfg.engine_kwargs)
    if cfg.engine == "vllm_server":
        from train.model.processor import load_processor

        return create_engine("vllm_server", cfg.base_url, load_processor(cfg.name_or_path), model=cfg.name_or_path,
                             seed=seed, **cfg.engine_kwargs)
    return create_engine("openai", cfg.name_or_path, base_url=cfg.base_url, api_key_env=cfg.api_key_env,
                         **cfg.engine_kwargs)
