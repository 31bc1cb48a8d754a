"""The multi-turn episode loop: the model writes, code runs in the sandbox, results come back, until it answers.

    trajectories = await run_episodes(tasks, engine, protocol=get_protocol("codevl"), pool=pool,
                                      limits=EpisodeLimits(max_turns=12), samples_per_task=8)

Every episode is its own asyncio task: while some episodes wait on the sandbox, others generate (the engine
batches whatever requests are pending), so there is never a lock-step turn barrier across the batch. An
`Episode` exposes its two phases (`generate`, `act`) so that a lock-step driver can be built from the same parts
for comparison (`scripts/bench/rollout.py`).

Bookkeeping (docs/architecture.md, "The data that flows" 2): with a token engine, the prompt is rendered once by the chat
template, sampled tokens are appended exactly as sampled (loss mask 1, their logprobs), and the tokens that close
an assistant turn and open the next are taken from the chat template by difference (`rollout.render`), with loss
mask 0. Steps: assistant turn k and the observation that answers it are step k; the answer turn carries the index
after the last code step. With a chat engine the trajectory is message level (no token arrays).

Limits end the episode with a finish reason: `turn_limit` (the last allowed turn wrote code: the code still runs
and its result is recorded, but no observation follows), `token_limit` (no room for the next turn or observation,
or a turn was cut by the length limit without a complete code block or answer), `image_limit` (a block showed
more images than the conversation may still hold; its result is recorded). An engine error ends that episode only
(`engine_error`); a sandbox that cannot give a session ends it with `sandbox_error`. A timed-out or crashed code
block is not an error of the loop: its result is an observation, and the next block gets a fresh session with the
input images loaded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollout.engines.base import ChatEngine, EngineError, SamplingParams, TokenEngine
from rollout.protocols.base import Protocol
from rollout.render import ChatRenderer
from rollout.task import Task
from rollout.trajectory import FinishReason, Step, Trajectory, TrajectoryImage, Turn
from sandbox.errors import SandboxError
from sandbox.result import ExecResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeLimits:
    """Per-episode limits. `None` for the observation/timeout settings means the protocol's default."""

    max_turns: int = 12  # assistant turns
    max_new_tokens_per_turn: int = 2048
    max_total_tokens: int = 16384  # whole sequence, prompt included, unexpanded
    max_images: int = 16  # images in the conversation, inputs included
    observation_max_chars: int | None = None
    code_timeout_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_turns", "max_new_tokens_per_turn", "max_total_tokens", "max_images"):
            if getattr(self, name) <= 0:
                raise ValueError(f"EpisodeLimits.{name} must be positive, got {getattr(self, name)}")


def load_image(path: str) -> np.ndarray:
    """An input image as an RGB uint8 array; a missing or unreadable file names its path."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"task image {path} cannot be read: {exc}") from exc


def request_seed(base_seed: int, trajectory_id: str, turn: int) -> int:
    """A distinct, reproducible seed for every generation request (vLLM would otherwise give the G rollouts of a
    group correlated samples when they share a prompt)."""
    h = hashlib.blake2b(f"{base_seed}|{trajectory_id}|{turn}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


def _assistant_message(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def _message_text(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["content"] if p.get("type") == "text")


class EpisodeRunner:
    """Shared settings of many episodes: engine, protocol, sandbox pool, limits, sampling."""

    def __init__(self, engine: TokenEngine | ChatEngine, protocol: Protocol, pool: Any, *,
                 limits: EpisodeLimits = EpisodeLimits(), sampling: SamplingParams = SamplingParams(),
                 renderer: ChatRenderer | None = None, seed: int = 0, metadata: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.protocol = protocol
        self.pool = pool
        self.limits = limits
        self.sampling = sampling
        self.seed = seed
        self.metadata = dict(metadata or {})
        self.token_level = bool(getattr(engine, "token_level", False))
        if self.token_level:
            assert isinstance(engine, TokenEngine)
            self.renderer = renderer or ChatRenderer(engine.processor or engine.tokenizer)
        else:
            self.renderer = renderer  # type: ignore[assignment]
        self.timeout_s = limits.code_timeout_s or protocol.default_timeout_s
        self.obs_chars = limits.observation_max_chars or protocol.observation_max_chars

    def episode(self, task: Task, *, sample_index: int = 0, group_id: str | None = None,
                trajectory_id: str | None = None) -> Episode:
        return Episode(self, task, sample_index=sample_index, group_id=group_id, trajectory_id=trajectory_id)

    async def run(self, task: Task, **kwargs: Any) -> Trajectory:
        ep = self.episode(task, **kwargs)
        try:
            if await ep.start():
                while await ep.generate() and await ep.act():
                    pass
        finally:
            await ep.close()
        return ep.trajectory


class Episode:
    """One trajectory in progress. `start()`, then alternate `generate()` and `act()` while they return True."""

    def __init__(self, runner: EpisodeRunner, task: Task, *, sample_index: int, group_id: str | None,
                 trajectory_id: str | None) -> None:
        self.r = runner
        tid = trajectory_id or f"{task.id}#{sample_index}"
        self.trajectory = Trajectory(
            id=tid, task=task, protocol=runner.protocol.name, group_id=group_id or task.id, sample_index=sample_index,
            metadata={**runner.metadata, "engine": getattr(runner.engine, "name", type(runner.engine).__name__),
                      "generate_s": 0.0, "sandbox_s": 0.0},
        )
        self.messages: list[dict[str, Any]] = []
        self.turn = 0
        self.step = 0
        self._registered = False
        self._pending_code: str | None = None
        self._last_sampled: list[int] = []
        self._stack = contextlib.AsyncExitStack()
        self._session: Any = None
        self._t0 = time.perf_counter()

    # ---- state ---------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.trajectory.finish_reason is not None

    def _release_engine(self) -> None:
        """Tell a batching engine this episode sends no more requests (once)."""
        if self._registered:
            self._registered = False
            hint = getattr(self.r.engine, "episode_finished", None)
            if hint is not None:
                hint()

    def _finish(self, reason: FinishReason, error: str | None = None) -> bool:
        tr = self.trajectory
        self._release_engine()
        if tr.finish_reason is None:
            tr.finish_reason = reason
            if error:
                tr.error = error
        return False

    def _append(self, ids: list[int], *, sampled: bool, logprobs: list[float] | None = None) -> tuple[int, int]:
        if not self.r.token_level:
            return 0, 0
        return self.trajectory.append(ids, sampled=sampled, step=self.step, logprobs=logprobs)

    # ---- phases --------------------------------------------------------------------------------------------

    async def start(self) -> bool:
        """Load the input images and render the prompt. False if the prompt alone exceeds the token limit."""
        tr = self.trajectory
        hint = getattr(self.r.engine, "episode_started", None)
        if hint is not None and not self._registered and tr.finish_reason is None:
            hint()
            self._registered = True
        arrays = await asyncio.to_thread(lambda: [load_image(p) for p in tr.task.images])
        tr.images = [TrajectoryImage(a, "input") for a in arrays]
        sizes = [(int(a.shape[1]), int(a.shape[0])) for a in arrays]
        self.messages = self.r.protocol.initial_messages(tr.task.question, sizes)
        tr.prompt_messages = [dict(m) for m in self.messages]
        if len(arrays) > self.r.limits.max_images:
            return self._finish(FinishReason.IMAGE_LIMIT, f"{len(arrays)} input images > max_images")
        if self.r.token_level:
            assert self.r.renderer is not None
            ids = self.r.renderer.prompt_ids(self.messages)
            if len(ids) >= self.r.limits.max_total_tokens:
                return self._finish(FinishReason.TOKEN_LIMIT, f"prompt of {len(ids)} tokens >= max_total_tokens")
            tr.append(ids, sampled=False, step=-1)
            tr.prompt_len = len(ids)
        return True

    async def generate(self) -> bool:
        """One assistant turn. True when it wrote code that `act()` should run; False when the episode ended."""
        if self.done:
            return False
        tr, lim = self.trajectory, self.r.limits
        budget = lim.max_total_tokens - len(tr.token_ids) if self.r.token_level else lim.max_new_tokens_per_turn
        if budget <= 0:
            return self._finish(FinishReason.TOKEN_LIMIT)
        sp = self.r.sampling.with_(max_new_tokens=min(lim.max_new_tokens_per_turn, budget), stop=self.r.protocol.stop,
                                   seed=request_seed(self.r.seed, tr.id, self.turn))
        images = [im.array for im in tr.images]
        t0 = time.perf_counter()
        try:
            if self.r.token_level:
                out = await self.r.engine.generate(tr.token_ids, images, sp)  # type: ignore[union-attr]
                sampled, text, finish = out.token_ids, out.text, out.finish_reason
                assert self.r.renderer is not None
                content = self.r.renderer.assistant_text(sampled)
            else:
                chat = await self.r.engine.chat(  # type: ignore[union-attr]
                    self.messages, images, sp, context={"task_id": tr.task.id, "trajectory_id": tr.id})
                text = chat.text
                if chat.finish_reason == "stop":
                    text = self.r.protocol.restore_stop(text)
                sampled, finish, content = [], chat.finish_reason, text
        except EngineError as exc:  # an engine failure ends this episode only; a bug in our own code raises
            logger.warning("episode %s: engine error: %s", tr.id, exc)
            return self._finish(FinishReason.ENGINE_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            tr.metadata["generate_s"] += time.perf_counter() - t0
        self.turn += 1
        start, end = self._append(list(sampled), sampled=True, logprobs=list(out.logprobs) if self.r.token_level else None)
        parsed = self.r.protocol.parse(text)
        tr.turns.append(Turn("assistant", start, end, content, self.step, code=parsed.code, answer=parsed.answer,
                             finish=finish, events=list(parsed.events)))
        self._last_sampled = list(sampled)
        self.messages.append(_assistant_message(content))
        if parsed.answer is not None:
            tr.answer = parsed.answer
            self._close_turn()
            return self._finish(FinishReason.ANSWERED)
        if parsed.code is None:
            self._close_turn()
            return self._finish(FinishReason.TOKEN_LIMIT if finish == "length" else FinishReason.STOPPED)
        self._pending_code = parsed.code
        return True

    async def act(self) -> bool:
        """Run the pending code block and append its observation. False when the episode ended."""
        if self.done or self._pending_code is None:
            return False
        tr, lim, proto = self.trajectory, self.r.limits, self.r.protocol
        code, self._pending_code = self._pending_code, None
        t0 = time.perf_counter()
        try:
            result = await self._run_code(code)
        except SandboxError as exc:  # the sandbox could not be used at all (not the model's code failing)
            logger.warning("episode %s: sandbox error: %s", tr.id, exc)
            tr.steps.append(Step(self.step, code, None, assistant_turn=len(tr.turns) - 1, skipped="sandbox_error"))
            self._close_turn()
            return self._finish(FinishReason.SANDBOX_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            tr.metadata["sandbox_s"] += time.perf_counter() - t0
        step = Step(self.step, code, result, assistant_turn=len(tr.turns) - 1)
        tr.steps.append(step)
        if self.turn >= lim.max_turns:
            self._close_turn()
            return self._finish(FinishReason.TURN_LIMIT)
        if len(tr.images) + len(result.images) > lim.max_images:
            self._close_turn()
            return self._finish(FinishReason.IMAGE_LIMIT)
        obs = proto.observation_message(result, first_image_number=len(tr.images), timeout_s=self.r.timeout_s,
                                        max_chars=self.r.obs_chars)
        if self.r.token_level:
            assert self.r.renderer is not None
            closing, nxt = self.r.renderer.continuation(self.messages[:-1], self._last_sampled, obs)
            if len(tr.token_ids) + len(closing) + len(nxt) >= lim.max_total_tokens:
                self._append(closing, sampled=False)
                tr.turns[-1].end = len(tr.token_ids)
                return self._finish(FinishReason.TOKEN_LIMIT)
            self._append(closing, sampled=False)
            tr.turns[-1].end = len(tr.token_ids)
            start, end = self._append(nxt, sampled=False)
        else:
            start = end = 0
        first = len(tr.images)
        tr.images += [TrajectoryImage(im.array, "step", step=self.step) for im in result.images]
        tr.turns.append(Turn("observation", start, end, _message_text(obs), self.step,
                             image_indices=list(range(first, len(tr.images))), content=list(obs["content"])))
        step.observation_turn = len(tr.turns) - 1
        self.messages.append(obs)
        self.step += 1
        return True

    def _close_turn(self) -> None:
        """Append the template's end of the last assistant turn (not sampled) and extend that turn's span."""
        if not self.r.token_level or not self.trajectory.turns:
            return
        assert self.r.renderer is not None
        closing, _ = self.r.renderer.continuation(self.messages[:-1], self._last_sampled, None)
        self._append(closing, sampled=False)
        self.trajectory.turns[-1].end = len(self.trajectory.token_ids)

    async def _run_code(self, code: str) -> ExecResult:
        if self._session is None:
            names = self.r.protocol.image_names(len(self.trajectory.task.images))
            inputs = {n: self.trajectory.images[i].array for i, n in enumerate(names)}
            self._session = await self._stack.enter_async_context(self.r.pool.session(images=inputs))
        result: ExecResult = await self._session.run(code, timeout=self.r.timeout_s)
        if not result.status.session_alive:
            # The worker is gone (timeout, memory, crash): the next block starts a fresh session.
            await self._stack.aclose()
            self._stack = contextlib.AsyncExitStack()
            self._session = None
        return result

    async def close(self) -> None:
        self._release_engine()
        await self._stack.aclose()
        self._session = None
        tr = self.trajectory
        if tr.finish_reason is None:
            self._finish(FinishReason.TURN_LIMIT)
        tr.metadata["wall_s"] = time.perf_counter() - self._t0
        tr.metadata["turns"] = self.turn
        tr.check()


async def run_episodes(tasks: Sequence[Task], engine: TokenEngine | ChatEngine, *, protocol: Protocol, pool: Any,
                       limits: EpisodeLimits = EpisodeLimits(), sampling: SamplingParams = SamplingParams(),
                       samples_per_task: int = 1, max_concurrent: int | None = None, seed: int = 0,
                       group_prefix: str = "", renderer: ChatRenderer | None = None, progress: bool = False,
                       metadata: dict[str, Any] | None = None) -> list[Trajectory]:
    """Run `samples_per_task` episodes of every task concurrently; returns trajectories task-major (the G
    rollouts of task 0, then of task 1, ...). `max_concurrent` bounds episodes in flight (default: all); keep it
    within the sandbox pool's session limit, since an episode holds its session from its first code block on."""
    runner = EpisodeRunner(engine, protocol, pool, limits=limits, sampling=sampling, renderer=renderer, seed=seed,
                           metadata=metadata)
    # A task listed twice is two groups: its second occurrence gets ids `<task>@1` (never merged, never the same
    # request seeds as the first).
    seen: dict[str, int] = {}
    keys = []
    for t in tasks:
        k = seen.get(t.id, 0)
        seen[t.id] = k + 1
        keys.append(f"{group_prefix}{t.id}" + (f"@{k}" if k else ""))
    jobs = [(t, key, g) for t, key in zip(tasks, keys, strict=True) for g in range(samples_per_task)]
    sem = asyncio.Semaphore(max_concurrent or max(1, len(jobs)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="episodes", unit="ep")

    async def one(task: Task, key: str, g: int) -> Trajectory:
        async with sem:
            traj = await runner.run(task, sample_index=g, group_id=key, trajectory_id=f"{key}#{g}")
        if bar is not None:
            bar.update(1)
        return traj

    try:
        return list(await asyncio.gather(*(one(t, key, g) for t, key, g in jobs)))
    finally:
        if bar is not None:
            bar.close()
