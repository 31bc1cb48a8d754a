"""Which tasks each RL step trains on: seeded epochs over the task list, with a position that checkpoints resume.

Epoch e visits the tasks in the order of a shuffle seeded by `seed + e`; `take(n)` continues where the last call
stopped, crossing into the next epoch when the current one runs out. The state is two integers (epoch, position),
so a resumed run draws exactly the tasks the uninterrupted run would have drawn.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from rollout.task import Task


class TaskSampler:
    def __init__(self, tasks: Sequence[Task], *, seed: int = 0) -> None:
        if not tasks:
            raise ValueError("no tasks to sample from")
        self.tasks = list(tasks)
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(len(self.tasks)))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def take(self, n: int) -> list[Task]:
        """The next `n` tasks (the same task can appear twice only across an epoch boundary with n > len)."""
        out = []
        for _ in range(n):
            if self.position >= len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self._permutation(self.epoch)
            out.append(self.tasks[self._order[self.position]])
            self.position += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "num_tasks": len(self.tasks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("num_tasks") != len(self.tasks):
            raise ValueError(f"checkpoint was taken over {state.get('num_tasks')} tasks but the data has "
                             f"{len(self.tasks)}; resume with the same data.train_files")
        self.seed, self.epoch, self.position = int(state["seed"]), int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
