"""Which config model validates which YAML: by kind name, or by the `configs/<kind>/` folder a file is in."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from train.config.demo import DemoConfig
from train.config.errors import ConfigError
from train.config.eval import EvalConfig
from train.config.rl import RLConfig
from train.config.sft import SFTConfig

CONFIG_KINDS: dict[str, type[BaseModel]] = {"sft": SFTConfig, "rl": RLConfig, "demo": DemoConfig, "eval": EvalConfig}


def config_model(kind: str) -> type[BaseModel]:
    """The config class for `kind`; the error lists the valid kinds."""
    try:
        return CONFIG_KINDS[kind]
    except KeyError:
        raise ConfigError(f"unknown config kind {kind!r}; valid kinds: {', '.join(CONFIG_KINDS)}") from None


def kind_of(path: str | Path) -> str | None:
    """'sft' for configs/sft/x.yaml etc.; None when the file is not under a kind's folder."""
    parts = Path(path).parts
    for kind in CONFIG_KINDS:
        if kind in parts[:-1]:
            return kind
    return None
