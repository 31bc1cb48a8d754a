"""codevl rewards: named reward components (step, episode and group scope), reward sets from YAML, the
CodeVision (paper and released-code) and TAPO rewards, peers' tool bonuses, CodeV faithfulness, offline
re-scoring and a TRL adapter. Each component's docstring restates its formula and cites the paper or the
released file and function it reproduces; docs/rewards.md lists the deliberate differences.

    from rewards import load_reward_set
    rs = load_reward_set("configs/rewards/codevision.yaml")
    breakdowns = rs.score(trajectories)        # also recorded in Trajectory.reward; contract: rewards/breakdown.py
    metrics = reward_metrics(breakdowns)       # reward/<name>/mean and /na_count for every component

No torch, transformers, trl or vllm is imported here (docs/architecture.md, import direction).
"""

from rewards.answers import AnswerMatch, AnswerMatchParams, extract_answer, match_answer
from rewards.breakdown import ComponentScore, RewardBreakdown
from rewards.component import ComponentValue, RewardComponent
from rewards.context import ScoringContext
from rewards.errors import ComponentError, JudgeFailed, RewardConfigError, RewardError
from rewards.faithfulness import FaithfulnessParams, FaithfulnessReport, evaluate_faithfulness
from rewards.judge import JudgeClient, JudgeConfig
from rewards.loader import load_reward_set, reward_set_from_config
from rewards.metrics import batch_metrics, reward_metrics
from rewards.params import ComponentParams, ReleasedToolUseParams, ToolUseParams
from rewards.registry import build_component, component_class, component_names, register
from rewards.reward_set import RewardSet
from rewards.trl_adapter import TRLRewardFunction

__all__ = [
    "AnswerMatch", "AnswerMatchParams", "ComponentError", "ComponentParams", "ComponentScore", "ComponentValue",
    "FaithfulnessParams", "FaithfulnessReport", "JudgeClient", "JudgeConfig", "JudgeFailed", "RewardBreakdown",
    "ReleasedToolUseParams", "RewardComponent", "RewardConfigError", "RewardError", "RewardSet", "ScoringContext",
    "TRLRewardFunction",
    "ToolUseParams", "batch_metrics", "build_component", "component_class", "component_names",
    "evaluate_faithfulness", "extract_answer", "load_reward_set", "match_answer", "register", "reward_metrics",
    "reward_set_from_config",
]
