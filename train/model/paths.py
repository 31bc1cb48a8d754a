"""Checks on `model.name_or_path` before anything loads, so a mistyped path is not reported as a hub error."""

from __future__ import annotations


class ModelPathError(ValueError):
    """`model.name_or_path` names no model: a missing directory, a directory without a checkpoint, or a hub id
    that is not in the local cache while the hub cannot be reached."""


def check_model_path(name_or_path: str) -> None:
    """Raise ModelPathError with what to do when `name_or_path` cannot be a model (before anything loads).

    A hub id (`org/name`) is accepted: it loads from the local Hugging Face cache or the hub where reachable."""
    from pathlib import Path

    p = Path(name_or_path).expanduser()
    if p.exists():
        if not p.is_dir() or not (p / "config.json").is_file():
            raise ModelPathError(f"model.name_or_path={name_or_path}: not a model directory (no config.json); give a "
                                 "folder saved by save_pretrained (e.g. runs/demo/sft/final) or a hub id")
        return
    looks_like_hub_id = name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/", "~"))
    if not looks_like_hub_id:
        raise ModelPathError(f"model.name_or_path={name_or_path}: no such directory (it is not a hub id of the form "
                             "org/name either); check the path")
