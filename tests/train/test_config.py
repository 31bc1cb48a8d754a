"""Config loading: every shipped YAML validates; bad keys and bad combinations fail with file:line and options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from train.config import ConfigError, load_config, resolved_yaml, save_resolved
from train.config.demo import DemoConfig
from train.config.kinds import CONFIG_KINDS, config_model, kind_of
from train.config.rl import RLConfig
from train.config.sft import SFTConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
ALL_YAML = sorted(p for p in CONFIGS.rglob("*.y*ml"))


def test_configs_folder_has_the_expected_kinds() -> None:
    assert {p.parent.name for p in ALL_YAML} >= {"sft", "demo", "accelerate"}


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_yaml_loads(path: Path) -> None:
    rel = path.relative_to(CONFIGS)
    top = rel.parts[0]
    if top in CONFIG_KINDS:
        cfg = load_config(config_model(top), path)
        assert resolved_yaml(cfg)
    elif top == "accelerate":
        from accelerate.commands.config.config_args import ClusterConfig
        from accelerate.commands.launch import launch_command_parser

        cluster = ClusterConfig.from_yaml_file(str(path))  # rejects unknown top-level keys
        launch_options = {a.dest for a in launch_command_parser()._actions}
        unknown = set(cluster.deepspeed_config or {}) - launch_options
        assert not unknown, f"{rel}: deepspeed_config keys accelerate does not know: {sorted(unknown)}"
    elif top == "rewards":
        from rewards import load_reward_set

        assert len(load_reward_set(path)) > 0
    else:
        pytest.fail(f"{rel}: no validator for configs/{top}/; add one to this test")


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sft" / "c.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


SFT_OK = """\
model:
  name_or_path: some/model
data:
  train_files: [a.jsonl]
optim:
  lr: 1.0e-5
"""


def test_misspelled_key_names_file_line_path_and_suggestion(tmp_path: Path) -> None:
    p = _write(tmp_path, SFT_OK.replace("  lr: 1.0e-5", "  lr: 1.0e-5\n  lrr: 3"))
    with pytest.raises(ConfigError) as exc:
        load_config(SFTConfig, p)
    msg = str(exc.value)
    assert f"{p}:7" in msg
    assert "unknown key 'optim.lrr'" in msg
    assert "did you mean 'optim.lr'" in msg
    assert "valid keys here: lr, weight_decay" in msg


def test_unknown_top_level_section_lists_sections(tmp_path: Path) -> None:
    p = _write(tmp_path, SFT_OK + "trainer:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'trainer' \(did you mean 'train'\?\); valid keys here: run, model, data, optim, train"):
        load_config(SFTConfig, p)


def test_wrong_literal_lists_valid_values(tmp_path: Path) -> None:
    p = _write(tmp_path, SFT_OK.replace("some/model", "some/model\n  dtype: bf16"))
    with pytest.raises(ConfigError, match=r"c.yaml:3: 'model.dtype': Input should be 'auto', 'float32', 'bfloat16' or 'float16'"):
        load_config(SFTConfig, p)


def test_missing_required_section(tmp_path: Path) -> None:
    p = _write(tmp_path, "model:\n  name_or_path: x\n")
    with pytest.raises(ConfigError, match="'data' is required"):
        load_config(SFTConfig, p)


def test_overrides_apply_parse_yaml_and_are_named_in_errors(tmp_path: Path) -> None:
    p = _write(tmp_path, SFT_OK)
    cfg = load_config(SFTConfig, p, ["optim.lr=1e-6", "train.epochs=3", "model.lora.r=4", "data.eval_files=[b.jsonl]"])
    assert cfg.optim.lr == pytest.approx(1e-6)
    assert cfg.train.epochs == 3.0
    assert cfg.model.lora is not None and cfg.model.lora.r == 4 and cfg.model.lora.alpha == 128
    assert [f.path for f in cfg.data.eval_files] == ["b.jsonl"] and cfg.data.eval_files[0].weight == 1.0
    with pytest.raises(ConfigError, match=r"command-line override: unknown key 'optim.learning_rate'"):
        load_config(SFTConfig, p, ["optim.learning_rate=1e-6"])
    with pytest.raises(ConfigError, match="not of the form key.path=value"):
        load_config(SFTConfig, p, ["optim.lr"])
    with pytest.raises(ConfigError, match="'optim.lr' is a value"):
        load_config(SFTConfig, p, ["optim.lr.x=1"])


def _rl_yaml(tmp_path: Path, extra: str = "") -> Path:
    rewards = tmp_path / "r.yaml"
    rewards.write_text("[]\n")
    p = tmp_path / "rl" / "c.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"model:\n  name_or_path: m\ndata:\n  train_files: [t.jsonl]\nrewards: {rewards}\n{extra}")
    return p


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algo.clip_high=0.1"], "algo.clip_high (0.1) is below algo.clip_low (0.2)"),
        (["algo.loss_type=dr_grpo"], "set algo.scale_rewards=none"),
        (["rollout.engine=vllm_server"], "needs rollout.vllm.server_url"),
        (["rollout.num_generations=1"], "'rollout.num_generations': Input should be greater than or equal to 2"),
        (["rollout.max_new_tokens_per_turn=9999", "rollout.max_total_tokens=100"], "lower the first or raise the second"),
        (["train.prompts_per_step=1", "rollout.num_generations=2", "train.updates_per_step=3"], "cannot fill"),
        (["model.min_pixels=100", "model.max_pixels=10"], "model.min_pixels (100) is larger than model.max_pixels"),
        (["rewards=nope.yaml"], "reward set file not found: nope.yaml"),
    ],
)
def test_invalid_rl_combinations_fail_at_load_time(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(RLConfig, _rl_yaml(tmp_path), overrides)
    assert message in str(exc.value)


def test_rl_defaults_match_codevision_recipe(tmp_path: Path) -> None:
    cfg = load_config(RLConfig, _rl_yaml(tmp_path))
    assert (cfg.algo.clip_low, cfg.algo.clip_high, cfg.algo.loss_type) == (0.2, 0.28, "token_mean")
    assert cfg.optim.lr == 1e-6 and cfg.rollout.num_generations == 8 and cfg.rollout.max_turns == 12


def test_resolved_config_round_trips_through_the_run_dir(tmp_path: Path) -> None:
    cfg = load_config(DemoConfig, CONFIGS / "demo" / "cpu.yaml", ["sft.steps=7"])
    saved = save_resolved(cfg, tmp_path / "run")
    assert saved == tmp_path / "run" / "config.yaml"
    assert load_config(DemoConfig, saved) == cfg
    assert yaml.safe_load(saved.read_text())["sft"]["steps"] == 7


def test_kind_of_uses_the_folder() -> None:
    assert kind_of("configs/sft/x.yaml") == "sft"
    assert kind_of("configs/rl/y.yaml") == "rl"
    assert kind_of("elsewhere/z.yaml") is None
    with pytest.raises(ConfigError, match="valid kinds: sft, rl, demo"):
        config_model("ppo")


def test_cli_dry_run_and_config_command() -> None:
    codevl = [sys.executable, "-m", "train.cli"]
    out = subprocess.run([*codevl, "demo", "--dry-run", "sft.steps=2"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["sft"]["steps"] == 2
    out = subprocess.run([*codevl, "config", "configs/sft/codevision_qwen2_5_vl_7b.yaml", "optim.lr=1e-5"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["optim"]["lr"] == 1e-5
    out = subprocess.run([*codevl, "config", "configs/sft/codevision_qwen2_5_vl_7b.yaml", "optim.lrr=1"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown key 'optim.lrr'" in out.stderr and "did you mean 'optim.lr'" in out.stderr
