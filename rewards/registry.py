"""The component registry: name -> class. Components register with `@register`; reward sets name them.

    from rewards.registry import build_component, component_names
    acc = build_component("answer_accuracy", weight=1.0, params={"rel_tol": 0.01})

An unknown name is a `RewardConfigError` that lists the valid names (and the closest one).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from rewards.component import RewardComponent
from rewards.errors import RewardConfigError

COMPONENTS: dict[str, type[RewardComponent]] = {}
RESERVED_KEYS = frozenset({"total", "episode", "steps"})


def register(cls: type[RewardComponent]) -> type[RewardComponent]:
    """Class decorator: add a component class under its `name` (names are unique)."""
    if not cls.name or not cls.name.isidentifier() or cls.name in RESERVED_KEYS:
        raise ValueError(f"{cls.__name__}: component name {cls.name!r} must be an identifier and not one of "
                         f"{sorted(RESERVED_KEYS)}")
    if cls.scope not in ("step", "episode", "group"):
        raise ValueError(f"{cls.__name__}: scope {cls.scope!r} is not step, episode or group")
    if cls.name in COMPONENTS and COMPONENTS[cls.name] is not cls:
        raise ValueError(f"component name {cls.name!r} is registered twice ({COMPONENTS[cls.name].__name__}, {cls.__name__})")
    COMPONENTS[cls.name] = cls
    return cls


def _load_builtin() -> None:
    import rewards.components  # noqa: F401  (registers the shipped components)


def component_names() -> list[str]:
    """All registered names, sorted."""
    _load_builtin()
    return sorted(COMPONENTS)


def suggestion(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def component_class(name: str) -> type[RewardComponent]:
    """The class registered as `name`; the error lists the valid names."""
    _load_builtin()
    try:
        return COMPONENTS[name]
    except KeyError:
        valid = sorted(COMPONENTS)
        raise RewardConfigError(f"unknown reward component {name!r}{suggestion(name, valid)}; valid components: "
                                f"{', '.join(valid)}") from None


def build_component(name: str, *, weight: float = 1.0, params: Mapping[str, Any] | None = None,
                    label: str | None = None, reduce: str | None = None) -> RewardComponent:
    """An instance of component `name` (params validated by its `Params`; pydantic errors propagate). `reduce`
    (step components: `sum` or `mean`) overrides how its steps enter the episode total."""
    return component_class(name)(params, weight=weight, label=label, reduce=reduce)  # type: ignore[arg-type]
