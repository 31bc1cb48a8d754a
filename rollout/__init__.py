"""The conversation protocols, generation engines, the multi-turn episode loop and token-exact trajectories.

    from rollout import get_protocol, run_episodes, EpisodeLimits, SamplingParams, Task, Trajectory
"""

from rollout.engines.base import ChatEngine, EngineError, GenerateOutput, SamplingParams, TokenEngine
from rollout.loop import Episode, EpisodeLimits, EpisodeRunner, run_episodes
from rollout.protocols import PROTOCOLS, Protocol, get_protocol
from rollout.task import EvidenceBox, Task
from rollout.trajectory import FinishReason, Step, Trajectory, TrajectoryImage, Turn, load_trajectories, save_trajectories

__all__ = [
    "PROTOCOLS", "ChatEngine", "EngineError", "Episode", "EpisodeLimits", "EpisodeRunner", "EvidenceBox", "FinishReason", "GenerateOutput", "Protocol", "SamplingParams", "Step",
    "Task", "TokenEngine", "Trajectory", "TrajectoryImage", "Turn", "get_protocol", "load_trajectories", "run_episodes",
    "save_trajectories",
]
