"""`Trajectory`: what happened when a policy worked on a task, token-exact (docs/architecture.md, "The data that flows" 2).

The token arrays are the source of truth and are appended to by the episode loop as it goes, never rebuilt by
re-tokenising text afterwards (docs/methods.md, "Pitfalls": stop strings cut text but not token ids):

- `token_ids`: the whole sequence, prompt included, *unexpanded* (one `<|image_pad|>` per image, which is what
  vLLM takes); `rollout.expand` builds the trainer's expanded ids, pixel values and grid sizes from it;
- `loss_mask`: 1 only on tokens the policy sampled; prompt and observation tokens are 0;
- `step_ids`: for every token, the index of the step it belongs to (assistant turn k and the observation that
  answers it are step k; the prompt is -1). Step rewards land on the tokens of their step;
- `logprobs`: the sampling logprob of each sampled token (0.0 elsewhere), for importance-sampling correction.

`turns` hold spans into those arrays plus the text, the code, the sandbox's `ExecResult`; `steps` list the code
steps in order (one per executed or attempted code block). Saved as JSONL (`save_trajectories`) with images as PNG
files in a content-addressed folder next to it, so the G rollouts of a group share one copy of their input image.
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rollout.task import Task
from sandbox.result import ExecResult

SCHEMA_VERSION = 1


class FinishReason(str, enum.Enum):
    """Why an episode ended."""

    ANSWERED = "answered"  # the model gave a final answer
    STOPPED = "stopped"  # the model ended its turn with neither code nor an answer
    TURN_LIMIT = "turn_limit"
    TOKEN_LIMIT = "token_limit"  # total tokens (or the model's context) exhausted
    IMAGE_LIMIT = "image_limit"
    ENGINE_ERROR = "engine_error"
    SANDBOX_ERROR = "sandbox_error"  # the sandbox itself failed (not the user's code): no session could be had


@dataclass
class TrajectoryImage:
    """An image in the conversation, in order of appearance: inputs first, then what code steps showed."""

    array: np.ndarray
    origin: Literal["input", "step"]
    step: int | None = None  # for origin="step": the step that produced it

    @property
    def size(self) -> tuple[int, int]:
        return int(self.array.shape[1]), int(self.array.shape[0])


@dataclass
class Turn:
    """One assistant message or one observation, as a span `[start, end)` of the trajectory's token arrays."""

    role: Literal["assistant", "observation"]
    start: int
    end: int
    text: str
    step: int
    code: str | None = None  # assistant: the extracted code block
    answer: str | None = None  # assistant: the extracted final answer
    finish: str | None = None  # assistant: the engine's finish reason ("stop", "length", ...)
    image_indices: list[int] = field(default_factory=list)  # observation: indices into Trajectory.images
    events: list[str] = field(default_factory=list)  # malformed output etc., e.g. "unclosed_code_block"
    content: list[dict[str, Any]] | None = None  # observation: the message's parts as rendered (text / image)

    def message(self) -> dict[str, Any]:
        """This turn as a chat message (assistant: its text; observation: its rendered parts)."""
        if self.role == "assistant":
            return {"role": "assistant", "content": [{"type": "text", "text": self.text}]}
        return {"role": "user", "content": [dict(p) for p in (self.content or [{"type": "text", "text": self.text}])]}

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "start": self.start, "end": self.end, "text": self.text, "step": self.step,
                "code": self.code, "answer": self.answer, "finish": self.finish,
                "image_indices": list(self.image_indices), "events": list(self.events), "content": self.content}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Turn:
        return cls(**{k: d[k] for k in ("role", "start", "end", "text", "step")},
                   code=d.get("code"), answer=d.get("answer"), finish=d.get("finish"),
                   image_indices=list(d.get("image_indices", [])), events=list(d.get("events", [])),
                   content=d.get("content"))


@dataclass
class Step:
    """A code step: the block the model wrote and what the sandbox did with it (`result` is None when the
    block was not run, e.g. the episode hit a limit first; `skipped` says why)."""

    index: int
    code: str
    result: ExecResult | None
    assistant_turn: int  # index into Trajectory.turns
    observation_turn: int | None = None
    skipped: str | None = None


@dataclass
class Trajectory:
    id: str
    task: Task
    protocol: str
    prompt_len: int = 0  # the first prompt_len tokens are the rendered system + user prompt (0: message-level)
    prompt_messages: list[dict[str, Any]] = field(default_factory=list)  # system + user messages, as rendered
    token_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    step_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    images: list[TrajectoryImage] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    answer: str | None = None
    group_id: str | None = None  # rollouts of the same task in the same RL step share it
    sample_index: int = 0
    error: str | None = None  # engine/sandbox failure text when finish_reason says so
    reward: dict[str, Any] | None = None  # the reward breakdown recorded when it was scored (rewards package)
    metadata: dict[str, Any] = field(default_factory=dict)  # engine, policy version, timings, ...

    # ---- building (used by the episode loop) -------------------------------------------------------------

    def append(self, ids: list[int], *, sampled: bool, step: int, logprobs: list[float] | None = None) -> tuple[int, int]:
        """Append tokens; returns their span. Sampled tokens carry loss mask 1 and their sampling logprobs."""
        if sampled and (logprobs is None or len(logprobs) != len(ids)):
            raise ValueError(f"{len(ids)} sampled tokens need as many logprobs (got {None if logprobs is None else len(logprobs)})")
        start = len(self.token_ids)
        self.token_ids.extend(ids)
        self.loss_mask.extend([1 if sampled else 0] * len(ids))
        self.step_ids.extend([step] * len(ids))
        self.logprobs.extend(logprobs if sampled else [0.0] * len(ids))  # type: ignore[arg-type]
        return start, len(self.token_ids)

    # ---- reading -----------------------------------------------------------------------------------------

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def num_sampled_tokens(self) -> int:
        return int(sum(self.loss_mask))

    def assistant_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.role == "assistant"]

    def messages(self) -> list[dict[str, Any]]:
        """The whole conversation as chat messages (image parts in the order of `images`): what SFT renders and
        what a full render compares against the token arrays."""
        return [*(dict(m) for m in self.prompt_messages), *(t.message() for t in self.turns)]

    def assistant_token_ids(self) -> list[list[int]]:
        """The sampled ids of each assistant turn (its span where the loss mask is 1)."""
        return [[i for i, m in zip(self.token_ids[t.start:t.end], self.loss_mask[t.start:t.end], strict=True) if m]
                for t in self.assistant_turns()]

    @property
    def tokenized(self) -> bool:
        """False for message-level trajectories (OpenAI-compatible engines, scripted oracle data): they carry
        text, code, results and images but no token arrays; they are SFT data, never RL data."""
        return bool(self.token_ids)

    def check(self) -> None:
        """Raise ValueError when the arrays, spans and images disagree (cheap; run on load and in tests)."""
        for i, s in enumerate(self.steps):
            if s.index != i or not (0 <= s.assistant_turn < len(self.turns)):
                raise ValueError(f"trajectory {self.id}: step {i} is out of order or points at no turn")
        for t in self.turns:
            if any(not (0 <= j < len(self.images)) for j in t.image_indices):
                raise ValueError(f"trajectory {self.id}: a turn references a missing image")
        if not self.tokenized:
            if self.prompt_len or any(t.start or t.end for t in self.turns):
                raise ValueError(f"trajectory {self.id}: no tokens but token spans are set")
            return
        n = len(self.token_ids)
        for name in ("loss_mask", "step_ids", "logprobs"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"trajectory {self.id}: {name} has {len(getattr(self, name))} entries, token_ids {n}")
        pos = self.prompt_len
        for i, t in enumerate(self.turns):
            if t.start != pos or t.end < t.start or t.end > n:
                raise ValueError(f"trajectory {self.id}: turn {i} span [{t.start}, {t.end}) does not follow {pos}")
            pos = t.end
        if pos != n:
            raise ValueError(f"trajectory {self.id}: turns end at {pos} but there are {n} tokens")
        if any(self.loss_mask[: self.prompt_len]):
            raise ValueError(f"trajectory {self.id}: prompt tokens carry loss")

    # ---- JSON ----------------------------------------------------------------------------------------------

    def to_dict(self, store: ImageStore) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "task": self.task.model_dump(mode="json"),
            "protocol": self.protocol,
            "prompt_len": self.prompt_len,
            "prompt_messages": self.prompt_messages,
            "token_ids": self.token_ids,
            "loss_mask": self.loss_mask,
            "step_ids": self.step_ids,
            "logprobs": self.logprobs,
            "turns": [t.to_dict() for t in self.turns],
            "steps": [
                {"index": s.index, "code": s.code, "assistant_turn": s.assistant_turn,
                 "observation_turn": s.observation_turn, "skipped": s.skipped,
                 "result": s.result.to_dict(store.write) if s.result is not None else None}
                for s in self.steps
            ],
            "images": [{"image": store.write(im.array), "origin": im.origin, "step": im.step} for im in self.images],
            "finish_reason": self.finish_reason.value if self.finish_reason else None,
            "answer": self.answer,
            "group_id": self.group_id,
            "sample_index": self.sample_index,
            "error": self.error,
            "reward": self.reward,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], store: ImageStore) -> Trajectory:
        if d.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"trajectory schema {d.get('schema')!r} is not {SCHEMA_VERSION}")
        traj = cls(
            id=d["id"], task=Task.model_validate(d["task"]), protocol=d["protocol"], prompt_len=d["prompt_len"],
            prompt_messages=list(d.get("prompt_messages", [])),
            token_ids=list(d["token_ids"]), loss_mask=list(d["loss_mask"]), step_ids=list(d["step_ids"]),
            logprobs=[float(x) for x in d["logprobs"]],
            turns=[Turn.from_dict(t) for t in d["turns"]],
            steps=[Step(index=s["index"], code=s["code"], assistant_turn=s["assistant_turn"],
                        observation_turn=s.get("observation_turn"), skipped=s.get("skipped"),
                        result=ExecResult.from_dict(s["result"], store.read) if s.get("result") else None)
                   for s in d["steps"]],
            images=[TrajectoryImage(array=store.read(im["image"]), origin=im["origin"], step=im.get("step"))
                    for im in d["images"]],
            finish_reason=FinishReason(d["finish_reason"]) if d.get("finish_reason") else None,
            answer=d.get("answer"), group_id=d.get("group_id"), sample_index=d.get("sample_index", 0),
            error=d.get("error"), reward=d.get("reward"), metadata=d.get("metadata", {}),
        )
        traj.check()
        return traj


class ImageStore:
    """PNG files named by content hash in one folder: identical images (a group's shared input) are stored once.

    References are paths relative to the JSONL file's folder, so a run directory can be moved as a whole.
    """

    def __init__(self, root: str | Path, folder: str = "images") -> None:
        self.root = Path(root)
        self.folder = folder
        self._written: set[str] = set()

    def write(self, array: np.ndarray) -> str:
        from PIL import Image

        arr = np.ascontiguousarray(array)
        digest = hashlib.sha1(f"{arr.shape}{arr.dtype}".encode() + arr.tobytes()).hexdigest()[:20]
        rel = f"{self.folder}/{digest}.png"
        if rel not in self._written:
            path = self.root / rel
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                buf = io.BytesIO()
                Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
                # a name of this writer's own: processes of one run save the same image at the same time
                tmp = path.with_name(f"{digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
                tmp.write_bytes(buf.getvalue())
                tmp.replace(path)
            self._written.add(rel)
        return rel

    def read(self, ref: str) -> np.ndarray:
        from PIL import Image

        path = self.root / ref
        try:
            with Image.open(path) as im:
                return np.asarray(im.copy())
        except OSError as exc:
            raise ValueError(f"image {path} (referenced by a trajectory) cannot be read: {exc}") from exc


def save_trajectories(path: str | Path, trajectories: Iterable[Trajectory], *, append: bool = False) -> int:
    """Write trajectories as JSONL at `path`, images under `<path's folder>/images/`; returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = ImageStore(path.parent)
    n = 0
    with path.open("a" if append else "w") as f:
        for traj in trajectories:
            f.write(json.dumps(traj.to_dict(store)) + "\n")
            n += 1
    return n


def iter_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """Read trajectories back; a bad line raises ValueError naming file:line."""
    path = Path(path)
    store = ImageStore(path.parent)
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield Trajectory.from_dict(json.loads(line), store)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a valid trajectory: {exc}") from exc


def load_trajectories(path: str | Path) -> list[Trajectory]:
    return list(iter_trajectories(path))
