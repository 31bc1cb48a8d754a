"""Reward sets from YAML: every shipped set loads; mistakes name file, line and key and list the valid options;
the ablations differ from their base sets only in the ablated weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewards import RewardConfigError, component_class, component_names, load_reward_set, reward_set_from_config
from rewards.registry import COMPONENTS

ROOT = Path(__file__).resolve().parents[2]
SETS = sorted((ROOT / "configs" / "rewards").rglob("*.yaml"))


@pytest.mark.parametrize("path", SETS, ids=lambda p: str(p.relative_to(ROOT / "configs" / "rewards")))
def test_every_shipped_set_loads(path: Path) -> None:
    rs = load_reward_set(path)
    assert rs.name == path.stem and rs.description and len(rs) >= 3
    assert any(c.weight == 0.0 for c in rs) or path.stem == "pixel_reasoner"  # something is logged only


def test_shipped_sets_named_in_the_issue_exist() -> None:
    names = {p.relative_to(ROOT / "configs" / "rewards").as_posix() for p in SETS}
    assert {"codevision.yaml", "codevision_code.yaml", "tapo.yaml", "tapo_judge.yaml", "deepeyes.yaml",
            "pyvision_rl.yaml", "ablations/codevision_no_strategy.yaml", "ablations/codevision_no_penalties.yaml",
            "ablations/tapo_no_tool_reward.yaml"} <= names


def _weights(path: str) -> dict[str, float]:
    return {c.key: c.weight for c in load_reward_set(path)}


def _params(path: str) -> dict[str, dict]:
    return {c.key: c.params.model_dump() for c in load_reward_set(path)}


@pytest.mark.parametrize(("ablation", "base", "zeroed"), [
    ("ablations/codevision_no_strategy.yaml", "codevision.yaml",
     {"codevision_must_use", "codevision_exact_set", "codevision_suggested_tool"}),
    ("ablations/codevision_no_penalties.yaml", "codevision.yaml",
     {"codevision_turn_penalty", "codevision_poor_reasoning", "codevision_inappropriate_tool"}),
    ("ablations/tapo_no_tool_reward.yaml", "tapo.yaml", {"tapo_tool"}),
])
def test_ablations_only_zero_the_ablated_weights(ablation: str, base: str, zeroed: set[str]) -> None:
    a, b = _weights(f"configs/rewards/{ablation}"), _weights(f"configs/rewards/{base}")
    assert a.keys() == b.keys() and _params(f"configs/rewards/{ablation}") == _params(f"configs/rewards/{base}")
    assert {k for k in a if a[k] != b[k]} == zeroed and all(a[k] == 0.0 and b[k] != 0.0 for k in zeroed)


def test_paper_weights_of_the_codevision_sets() -> None:
    assert _weights("configs/rewards/codevision.yaml") == {
        "answer_accuracy": 1.0, "format": 0.1, "codevision_must_use": 1.0, "codevision_exact_set": 0.1,
        "codevision_suggested_tool": 0.2, "codevision_turn_penalty": -0.5, "codevision_poor_reasoning": -0.5,
        "codevision_inappropriate_tool": -0.5, "exec_error": 0.0, "faithful_crop": 0.0}
    code = _weights("configs/rewards/codevision_code.yaml")
    # released recipe: beta 0.0 (necessity), gamma 0.5; the tool's -0.05 per failed call is discarded (weight 0)
    assert (code["codevision_code_necessity"], code["exec_error"], code["codevision_code_usage_cost"]) == (0.0, 0.0, -0.5)


BAD = """\
name: bad
componets: []
components:
  - name: tapo_tool
    weight: 0.5
    params:
      min_focuss: 0.1
      judge:
        base_ur: http://x
        model: m
  - name: answer_acuracy
  - name: format
    wieght: 1
  - name: exec_error
    weight: heavy
  - name: answer_accuracy
    params:
      rel_tol: -1
"""


def test_mistakes_name_file_line_key_and_valid_options(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(BAD)
    with pytest.raises(RewardConfigError) as exc:
        load_reward_set(p)
    msg = str(exc.value)
    assert f"invalid reward set {p} (8 problems)" in msg
    assert f"{p}:2: unknown key 'componets' (did you mean 'components'?); valid keys: name, description, components" in msg
    assert (f"{p}:7: components[0].params: unknown parameter 'min_focuss' of component 'tapo_tool' "
            "(did you mean 'min_focus'?); valid parameters: ops_source, include_failed_steps, failed_step_ops, mode") in msg
    assert f"{p}:9: components[0].params: unknown parameter 'judge.base_ur'" in msg and "valid parameters: base_url" in msg
    assert f"{p}:8: components[0].params.judge.base_url: Field required" in msg
    assert (f"{p}:11: components[1]: unknown reward component 'answer_acuracy' (did you mean 'answer_accuracy'?); "
            "valid components: answer_accuracy, codev_format, codevision_code_accuracy") in msg
    assert f"{p}:13: components[2]: unknown key 'wieght' (did you mean 'weight'?); valid keys: name, weight, params, label" in msg
    assert f"{p}:15: components[3].weight must be a number, got 'heavy'" in msg
    assert f"{p}:18: components[4].params.rel_tol: Input should be greater than or equal to 0" in msg


def test_structure_errors(tmp_path: Path) -> None:
    with pytest.raises(RewardConfigError, match="reward set file not found: nope.yaml"):
        load_reward_set("nope.yaml")
    p = tmp_path / "x.yaml"
    p.write_text("components: {a: 1}\n")
    with pytest.raises(RewardConfigError, match=r"x.yaml:1: 'components' must be a list"):
        load_reward_set(p)
    p.write_text("components:\n  - format\n")
    with pytest.raises(RewardConfigError, match=r"x.yaml:2: components\[0\] must be a mapping"):
        load_reward_set(p)
    p.write_text("components:\n  - {name: format}\n  - {name: format}\n")
    with pytest.raises(RewardConfigError, match="appear more than once; give repeated components distinct `label`s"):
        load_reward_set(p)
    p.write_text("components: [\n")
    with pytest.raises(RewardConfigError, match="not valid YAML"):
        load_reward_set(p)
    p.write_text("just a string\n")
    with pytest.raises(RewardConfigError, match="a reward set is a mapping"):
        load_reward_set(p)


def test_dicts_lists_and_defaults() -> None:
    rs = reward_set_from_config([{"name": "format"}, {"name": "answer_accuracy", "weight": 2, "label": "acc"}])
    assert rs.name == "custom" and [(c.key, c.weight) for c in rs] == [("format", 1.0), ("acc", 2.0)]
    with pytest.raises(RewardConfigError, match="reward set 'empty' has no components; list at least one"):
        reward_set_from_config({"name": "empty"})  # an empty set would silently train on 0 (issue 14, item 10)
    with pytest.raises(RewardConfigError, match="label must be an identifier"):
        reward_set_from_config([{"name": "format", "label": "a b"}])


def test_registry_lists_valid_names_and_components_document_themselves() -> None:
    with pytest.raises(RewardConfigError, match=r"unknown reward component 'tapo' \(did you mean 'tapo_tool'\?\); valid components: "):
        component_class("tapo")
    assert len(component_names()) >= 20
    for name, cls in COMPONENTS.items():
        assert cls.source and cls.formula, name
        # every component cites where its formula comes from: a paper or a released file::function
        assert any(w in cls.source for w in ("paper", "::", "arXiv", "released")) or name == "exec_success", name
        assert cls.scope in ("step", "episode", "group")
        module_doc = __import__(cls.__module__, fromlist=["_"]).__doc__
        assert module_doc and len(module_doc) > 80, name
