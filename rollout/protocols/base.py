"""What a prompt style is: the `Protocol` base class (docs/architecture.md, rollout: "Protocol").

One object per style fixes everything about the conversation format: the system prompt, how a code block is
delimited and where generation stops, how the sandbox's result comes back (text truncation, image placeholders,
errors worded to help recovery), how the final answer is written and extracted, and the names of the input image
variables. The same object renders SFT data and RL rollouts, so the model is trained on exactly the format it sees
when it acts.

Messages are in chat-template form: `{"role": ..., "content": [{"type": "text", "text": ...}, {"type": "image"}]}`;
the i-th image part of the whole conversation is the i-th image of the trajectory.

Parsing is deterministic and records what was odd (`ParsedTurn.events`):

- `unclosed_code_block`: an opening code tag without its closing tag (e.g. cut by the token limit): not run;
- `two_answers`: more than one answer; the first counts;
- `code_after_answer`: a code block after the answer: the answer counts, the code is not run;
- `text_after_code`: text after the closing code tag (engines that ignore stop strings): the code runs, the rest
  is ignored; an answer there does not count (`answer_after_code`);
- `empty_code_block`: a code block with nothing in it: nothing runs;
- `empty_answer`: `<answer></answer>` with nothing inside: no answer;
- `no_code_no_answer`: neither; the episode ends with finish reason `stopped`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.result import ExecResult, ExecStatus

Message = dict[str, Any]

_FENCE = re.compile(r"^\s*```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)\n?[ \t]*```\s*$", re.DOTALL)
_BOXED = "\\boxed{"


@dataclass(frozen=True)
class ParsedTurn:
    """What an assistant message asks for: code to run, a final answer, or neither; plus what was malformed."""

    code: str | None = None
    answer: str | None = None
    events: tuple[str, ...] = ()


def extract_boxed(text: str) -> str | None:
    """Content of the first `\\boxed{...}` with balanced braces, or None."""
    i = text.find(_BOXED)
    if i < 0:
        return None
    depth, j = 1, i + len(_BOXED)
    start = j
    while j < len(text):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:j].strip()
        j += 1
    return None


def truncate_middle(text: str, max_chars: int) -> str:
    """Keep the head and tail of long output with a marker saying how much was cut (the tail holds tracebacks
    and final prints, the head the first prints)."""
    if len(text) <= max_chars:
        return text
    head = max_chars * 2 // 3
    tail = max_chars - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n... [{cut} characters truncated] ...\n{text[len(text) - tail:]}"


@dataclass
class Protocol:
    """A conversation format. Subclasses set the class attributes and may override the render methods."""

    name: str = "base"
    code_open: str = "<code>"
    code_close: str = "</code>"
    fence_code: bool = True  # the code sits in a ```python fence inside the code tags
    answer_open: str = "<answer>"
    answer_close: str = "</answer>"
    boxed_answer: bool = False  # the answer is written as \boxed{...} inside the answer tags
    answer_padding: str = ""  # written around the answer inside the tags (PyVision: a newline on each side)
    think_tags: bool = False  # an assistant message's reasoning is written inside <think>...</think>
    image_prefix: str = "image_clue_"
    observation_max_chars: int = 2000
    default_timeout_s: float = 20.0
    max_turns_hint: int | None = None  # the paper's turn limit, for configs to copy
    extra_stops: tuple[str, ...] = field(default_factory=tuple)

    # ---- names and prompts --------------------------------------------------------------------------------

    @property
    def stop(self) -> tuple[str, ...]:
        """Where generation stops: after a code block closes (the model's EOS always stops too)."""
        return (self.code_close, *self.extra_stops)

    def image_names(self, n: int) -> list[str]:
        """Variable names of the input images inside the sandbox session, in order."""
        return [f"{self.image_prefix}{i}" for i in range(n)]

    def system_prompt(self, image_names: list[str]) -> str:
        raise NotImplementedError

    def user_content(self, question: str, image_names: list[str], image_sizes: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """The first user message: images then the question (subclasses may label the images)."""
        parts: list[dict[str, Any]] = [{"type": "image"} for _ in image_names]
        sizes = ", ".join(f"{n}: {w}x{h}" for n, (w, h) in zip(image_names, image_sizes, strict=True))
        parts.append({"type": "text", "text": f"{question}\n(Images in the sandbox: {sizes}.)"})
        return parts

    def initial_messages(self, question: str, image_sizes: list[tuple[int, int]]) -> list[Message]:
        names = self.image_names(len(image_sizes))
        return [
            {"role": "system", "content": [{"type": "text", "text": self.system_prompt(names)}]},
            {"role": "user", "content": self.user_content(question, names, image_sizes)},
        ]

    # ---- writing (SFT data, scripted policies) ------------------------------------------------------------

    def format_code(self, code: str) -> str:
        body = f"```python\n{code.strip()}\n```" if self.fence_code else code.strip()
        return f"{self.code_open}\n{body}\n{self.code_close}"

    def format_answer(self, answer: str) -> str:
        inner = f"{_BOXED}{answer}}}" if self.boxed_answer else answer
        pad = self.answer_padding
        return f"{self.answer_open}{pad}{inner}{pad}{self.answer_close}"

    def format_assistant(self, text: str, code: str | None = None, answer: str | None = None) -> str:
        """One assistant message: thinking text, then either a code block or the final answer."""
        if (code is None) == (answer is None):
            raise ValueError("an assistant message has exactly one of code or answer")
        tail = self.format_code(code) if code is not None else self.format_answer(str(answer))
        thought = text.strip()
        if thought and self.think_tags:
            thought = f"<think>\n{thought}\n</think>"
        return f"{thought}\n{tail}" if thought else tail

    # ---- reading model output -----------------------------------------------------------------------------

    def restore_stop(self, text: str) -> str:
        """Put back a closing code tag that an API stripped as a stop string (OpenAI-style chat APIs return the
        text without it): only when a code block is open at the end of `text`."""
        i = text.rfind(self.code_open)
        if i >= 0 and text.find(self.code_close, i) < 0:
            return text.rstrip() + "\n" + self.code_close if not text.endswith("\n") else text + self.code_close
        return text

    def extract_answer(self, text: str) -> str | None:
        """The final answer in `text` (None if there is none); also used by rewards on raw completions."""
        i = text.find(self.answer_open)
        if i < 0:
            return extract_boxed(text) if self.boxed_answer else None
        j = text.find(self.answer_close, i + len(self.answer_open))
        inner = text[i + len(self.answer_open) : j if j >= 0 else len(text)]
        if self.boxed_answer:
            boxed = extract_boxed(inner)
            if boxed is not None:
                return boxed
        inner = inner.strip()
        return inner or None

    def _strip_fence(self, body: str) -> str:
        m = _FENCE.match(body)
        return (m.group(1) if m else body).strip("\n")

    def parse(self, text: str) -> ParsedTurn:
        """Split an assistant message into code / answer / events (see the module docstring for the rules)."""
        events: list[str] = []
        ci = text.find(self.code_open)
        ai = text.find(self.answer_open)
        if ai >= 0 and (ci < 0 or ai < ci):
            answer = self.extract_answer(text)
            rest = text[ai + len(self.answer_open) :]
            if rest.find(self.answer_open) >= 0:
                events.append("two_answers")
            if ci >= 0:
                events.append("code_after_answer")
            if self.answer_close not in rest:
                events.append("unclosed_answer")
            if answer is None:
                events.append("empty_answer")
            return ParsedTurn(answer=answer, events=tuple(events))
        if ci >= 0:
            cj = text.find(self.code_close, ci + len(self.code_open))
            if cj < 0:
                return ParsedTurn(events=("unclosed_code_block",))
            code = self._strip_fence(text[ci + len(self.code_open) : cj])
            after = text[cj + len(self.code_close) :]
            if after.strip():
                events.append("text_after_code")
                if self.answer_open in after:
                    events.append("answer_after_code")
            if not code.strip():
                events.append("empty_code_block")
                return ParsedTurn(events=tuple(events))
            return ParsedTurn(code=code, events=tuple(events))
        return ParsedTurn(events=("no_code_no_answer",))

    # ---- observations -------------------------------------------------------------------------------------

    def result_text(self, result: ExecResult, *, timeout_s: float, max_chars: int | None = None) -> str:
        """The text part of an observation: output, then a recovery-oriented note for failures."""
        limit = max_chars or self.observation_max_chars
        out = result.stdout
        if result.value_repr is not None:
            out = f"{out}{'' if not out or out.endswith(chr(10)) else chr(10)}{result.value_repr}"
        parts: list[str] = []
        if out.strip():
            parts.append(out.rstrip("\n"))
        st = result.status
        if st is ExecStatus.ERROR and result.error is not None:
            tb = result.error.traceback.strip() or f"{result.error.type}: {result.error.message}"
            parts.append(f"{tb}\nThe error stopped this block; variables from earlier blocks are unchanged. "
                         "Fix the code and run it again.")
        elif st is ExecStatus.TIMEOUT:
            parts.append(f"TimeoutError: the block was stopped after the {timeout_s:g} s time limit. The interpreter "
                         "was restarted: earlier variables are lost (the input images are loaded again). Use smaller "
                         "images or fewer iterations.")
        elif st is ExecStatus.MEMORY:
            parts.append("MemoryError: the block ran out of memory and was stopped. The interpreter was restarted: "
                         "earlier variables are lost (the input images are loaded again). Work on smaller crops.")
        elif st is ExecStatus.OUTPUT_LIMIT:
            parts.append("OutputLimitError: the block printed or showed too much and was stopped. The interpreter was "
                         "restarted: earlier variables are lost (the input images are loaded again). Print less.")
        elif st in (ExecStatus.CRASHED, ExecStatus.KILLED):
            parts.append("The interpreter crashed while running this block and was restarted: earlier variables are "
                         "lost (the input images are loaded again).")
        text = "\n".join(parts)
        return truncate_middle(text, limit)

    def observation_message(self, result: ExecResult, *, first_image_number: int, timeout_s: float,
                            max_chars: int | None = None, images_shown: int | None = None) -> Message:
        """The user message that returns a code block's result; `images_shown` caps how many of its images are
        included (the rest are mentioned as dropped)."""
        raise NotImplementedError
